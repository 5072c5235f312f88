#!/bin/sh
# The CA inside its container: creates the CA once, prints its certificate, and signs CSRs
# read from stdin (one `docker exec` session signs many). Needs only a POSIX sh and openssl.
#
#   ca.sh init <openssl-subject> <rsa-bits> <days>   create the CA in $CA_DIR unless it exists
#   ca.sh cacert                                     print the CA certificate (exit 3: no CA)
#   ca.sh serve                                      sign requests from stdin (protocol below)
#   ca.sh config                                     print the openssl config the CA uses
#   ca.sh run                                        keep the container up
#
# serve protocol, one request after another, LF line ends:
#   SIGN <notBefore YYYYMMDDHHMMSSZ> <notAfter YYYYMMDDHHMMSSZ> <subject /C=GB/CN=host>
#   <CSR PEM lines>
#   .
#   <openssl extension file lines, section [leaf]>
#   .
# answered by "OK", the certificate PEM lines and "END", or by one line "ERR <why>".
# "PING" is answered by "OK"; "QUIT" or the end of stdin ends the session.
set -u
umask 077
CA=${CA_DIR:-/ca}
LOCK=${CA_LOCK:-/tmp/ca.lock}
NO_CA=3

die() {
    printf 'ca.sh: %s\n' "$*" >&2
    exit 1
}

config() {
    # unique_subject = no: renewals reuse subjects. copy_extensions = none: the host decides
    # every extension (the CSR only carries the key). Every DN field optional, order preserved.
    cat <<EOF
[ca]
default_ca = pki
[pki]
database = $CA/index.txt
new_certs_dir = $CA/certs
certificate = $CA/ca.crt
private_key = $CA/ca.key
serial = $CA/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
preserve = yes
email_in_dn = yes
string_mask = utf8only
[any]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
emailAddress = optional
[req]
distinguished_name = req_dn
string_mask = utf8only
prompt = no
[req_dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
}

# A lock all sessions share, so that openssl's index.txt and issued.log stay consistent. The
# noclobber (O_EXCL) create is atomic and needs no process; the holder's pid in the file lets a
# waiter break the lock of a session that died holding it.
lock() {
    tries=0
    set -C
    until { printf '%s\n' "$$" >"$LOCK"; } 2>/dev/null; do
        holder=
        read -r holder 2>/dev/null <"$LOCK"
        if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
            rm -f "$LOCK"
            continue
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 12000 ]; then  # about 90 s, under the host's 120 s wait
            set +C
            die "cannot take the lock $LOCK, held by process ${holder:-?} for 90 s (if no \
signing runs, remove it: docker exec <container> rm $LOCK)"
        fi
        sleep 0.005
    done
    set +C
}

unlock() {
    rm -f "$LOCK"
}

has_ca() {
    [ -s "$CA/ca.crt" ] && [ -s "$CA/ca.key" ]
}

utc() {  # seconds since the epoch -> YYYYMMDDHHMMSSZ (GNU and busybox date)
    date -u -d "@$1" +%Y%m%d%H%M%SZ
}

init() {
    [ $# -eq 3 ] || die "usage: ca.sh init <openssl-subject> <rsa-bits> <days>"
    case $2$3 in *[!0-9]*) die "init: <rsa-bits> and <days> are whole numbers" ;; esac
    lock
    if has_ca; then
        unlock
        return 0
    fi
    # Never replace a part of an earlier CA: only an empty volume becomes a new CA.
    for part in ca.crt ca.key index.txt; do
        if [ -s "$CA/$part" ]; then
            unlock
            die "$CA holds $part of an incomplete CA (remove the volume to start again)"
        fi
    done
    work="$CA/.init.$$"
    rm -rf "$work" && mkdir -p "$work/new" "$CA/certs" || { unlock; die "cannot write to $CA"; }
    config >"$work/ca.cnf"
    : >"$CA/index.txt"
    printf 'unique_subject = no\n' >"$CA/index.txt.attr"
    : >>"$CA/issued.log"
    now=$(date -u +%s)
    start=$(utc $((now - 300)))  # five minutes back for clock skew, as the local CA
    end=$(utc $((now + $3 * 86400)))
    if openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$work/ca.key" \
        2>"$work/err" &&
        openssl req -new -config "$work/ca.cnf" -key "$work/ca.key" -subj "$1" \
            -out "$work/ca.csr" 2>>"$work/err" &&
        openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$work/ca.key" \
            -in "$work/ca.csr" -out "$work/ca.crt" -outdir "$work/new" -notext -preserveDN \
            -rand_serial -startdate "$start" -enddate "$end" \
            -extensions ca_ext >/dev/null 2>>"$work/err"; then
        chmod 600 "$work/ca.key" && chmod 644 "$work/ca.crt" &&
            mv "$work/ca.key" "$CA/ca.key" && mv "$work/ca.crt" "$CA/ca.crt"
        status=$?
    else
        status=1
        tail -n 5 "$work/err" >&2
    fi
    rm -rf "$work"
    unlock
    [ "$status" -eq 0 ] || die "could not create the CA"
}

cacert() {
    has_ca || { printf 'ca.sh: no CA in %s\n' "$CA" >&2; exit "$NO_CA"; }
    cat "$CA/ca.crt"
}

# Copy stdin lines to file $1 up to a line ".", with builtins only (no process per request).
read_block() {
    done=1
    while IFS= read -r line; do
        if [ "$line" = . ]; then
            done=0
            break
        fi
        printf '%s\n' "$line"
    done >"$1"
    return "$done"
}

last_error() {  # the most telling line of openssl's stderr in $1, on one line
    why=
    while IFS= read -r line; do
        case $line in
        *"ould not"* | *"annot"*) why=$line ;;  # "Could not read CA private key": the cause
        *error* | *Error* | *unable* | *invalid* | *problem*) [ -n "$why" ] || why=$line ;;
        "") ;;
        *) [ -n "$why" ] || why=$line ;;
        esac
    done <"$1"
    printf '%s' "${why:-openssl ca failed}"
}

# Sign $work/csr with $work/ext for validity $1..$2 and subject $3; print the answer.
sign() {
    lock
    if openssl ca -batch -config "$work/ca.cnf" -notext -preserveDN -rand_serial \
        -startdate "$1" -enddate "$2" -subj "$3" -in "$work/csr" -outdir "$work/new" \
        -extfile "$work/ext" -extensions leaf >/dev/null 2>"$work/err"; then
        for cert in "$work"/new/*.pem; do :; done
        serial=${cert##*/}
        # issued.log: serial, subject, notAfter, time of issue (UTC), tab-separated
        printf '%s\t%s\t%s\t' "${serial%.pem}" "$3" "$2" >>"$CA/issued.log"
        date -u +%Y-%m-%dT%H:%M:%SZ >>"$CA/issued.log"
        unlock
        printf 'OK\n'
        cat "$cert"
        printf 'END\n'
        mv "$cert" "$CA/certs/" 2>/dev/null || rm -f "$cert"
    else
        unlock
        printf 'ERR %s\n' "$(last_error "$work/err")"
    fi
}

serve() {
    has_ca || die "the CA in $CA has lost its key or certificate (restore the volume from \
backup, or run \`doit new_ca\` to create a new CA on purpose)"
    work=$(mktemp -d /tmp/serve.XXXXXX) || die "cannot create a work folder in /tmp"
    trap 'rm -rf "$work"' EXIT
    trap 'exit 1' INT TERM HUP
    mkdir "$work/new" || die "cannot write to $work"
    config >"$work/ca.cnf"
    while IFS=' ' read -r command start end subject; do
        case $command in
        SIGN)
            if ! read_block "$work/csr" || ! read_block "$work/ext"; then
                printf 'ERR the request ended early\n'
                break
            elif [ -z "$subject" ]; then
                printf 'ERR usage: SIGN <notBefore> <notAfter> <subject>\n'
            else
                sign "$start" "$end" "$subject"
            fi
            ;;
        PING) printf 'OK\n' ;;
        QUIT) break ;;
        *) printf 'ERR unknown request %.40s\n' "$command" ;;
        esac
    done
}

run() {
    # A lock left by a session that died with the container's last run (its pid may be
    # reused now): nothing signs before the container is up, so it is stale.
    rm -f "$LOCK"
    # A shell waiting on sleep answers `docker stop` at once; a bare PID 1 sleep would not.
    trap 'exit 0' INT TERM
    while :; do
        sleep 3600 &
        wait $!
    done
}

command=${1:-}
[ $# -eq 0 ] || shift
case $command in
init) init "$@" ;;
cacert) cacert ;;
serve) serve ;;
config) config ;;
run) run ;;
*) die "usage: ca.sh init|cacert|serve|config|run" ;;
esac
