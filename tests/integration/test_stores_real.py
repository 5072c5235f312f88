"""The example deployment's artefacts, checked with the real keytool (Java 17) and openssl 3.

The example is built once for the module (local CA, SSL_PASSWORD=changeit1). What each file
should hold is worked out from config/deployment.toml here, not from the product's code or its
manifest, so the tools are the judges. Passwords never appear in argv: keytool reads
``-storepass:env``, openssl ``-passin env:``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # tests/integration as a package, or as a rootdir-inserted folder
    from . import realtools as rt
except ImportError:
    import realtools as rt

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("keytool", "openssl")),
    reason="needs keytool and openssl")

PASSWORD = rt.PASSWORD
PV = rt.PASS_VAR

# --- what config/deployment.toml asks for --------------------------------------------------

_EKU_TEXT = {"server_auth": "TLS Web Server Authentication",
             "client_auth": "TLS Web Client Authentication",
             "code_signing": "Code Signing", "email_protection": "E-mail Protection"}
_EKU_PURPOSE = {"server_auth": "sslserver", "client_auth": "sslclient"}
_BUILTIN_EKU = {"server": ["server_auth"], "client": ["client_auth"],
                "server_client": ["server_auth", "client_auth"]}
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


@dataclass(frozen=True)
class Expect:
    name: str
    keystore: str
    truststore: str
    encryption: str
    subject: str  # RFC 2253, no spaces: CN=liberty.eianet,C=GB
    dns: tuple[str, ...]
    eku: tuple[str, ...]
    key_bits: int

    @property
    def alias(self) -> str:
        return self.name.lower()

    @property
    def has_key(self) -> bool:
        return self.keystore != "none"


def _rfc2253(subject: str) -> str:
    return ",".join(p.strip() for p in subject.split(","))


def _load_expectations() -> tuple[dict, dict[str, Expect]]:
    data = tomllib.loads((rt.REPO / "config" / "deployment.toml").read_text())
    settings, defaults = data.get("settings", {}), data.get("defaults", {})
    dialect = settings.get("database_dialect", "db2")
    ekus = dict(_BUILTIN_EKU)
    for name, prof in data.get("profiles", {}).items():
        ekus[name] = list(prof.get("extended_key_usage", ekus.get(name, [])))
    domain, country = defaults.get("domain", "eianet"), defaults.get("country", "GB")
    out = {}
    for name, t in data["components"].items():
        if t.get("dialect", dialect) != dialect:
            continue
        fqdn = f"{name}.{domain}".lower() if domain else name.lower()
        subject = _rfc2253(t.get("subject", f"CN={fqdn}, C={country}"))
        profile = t.get("profile", "server")
        eku = tuple(ekus[profile])
        dns = list(t.get("dns", [fqdn, name.lower()]))
        cn = re.search(r"CN=([^,]+)", subject).group(1).lower()
        if "server_auth" in eku and cn not in dns and _HOST.match(cn):
            dns.insert(0, cn)  # a server's CN is also a DNS SAN
        out[name] = Expect(
            name=name, keystore=t.get("keystore", defaults.get("keystore", "jks")),
            truststore=t.get("truststore", defaults.get("truststore", "jks")),
            encryption=t.get("encryption", defaults.get("encryption", "modern")),
            subject=subject, dns=tuple(dns), eku=eku,
            key_bits=int(t.get("key", defaults.get("key", "rsa:2048")).split(":")[1]))
    return data, out


CONFIG, EXPECT = _load_expectations()
CA_ALIAS = CONFIG["ca"].get("alias", "ca")
KEYED = [e for e in EXPECT.values() if e.has_key]
STORE_EXT = {"jks": "jks", "pkcs12": "p12"}
KEYSTORES = [e for e in KEYED if e.keystore in STORE_EXT]
TRUSTSTORES = [e for e in EXPECT.values() if e.truststore in STORE_EXT]
PEM_KEYSTORES = [e for e in KEYED if e.keystore == "pem"]
P12 = [(e, role) for e in EXPECT.values() for role, kind in
       (("keystore", e.keystore), ("truststore", e.truststore)) if kind == "pkcs12"]


def _ids(items: list) -> list[str]:
    return [i.name if isinstance(i, Expect) else f"{i[0].name}-{i[1]}" for i in items]


def store_path(out: Path, e: Expect, role: str) -> Path:
    kind = e.keystore if role == "keystore" else e.truststore
    return out / "components" / e.name / f"{role}.{STORE_EXT[kind]}"


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca_text(ca_pem: Path) -> str:
    return rt.openssl("x509", "-in", ca_pem, "-noout", "-text").stdout.decode()


@pytest.fixture(scope="module")
def listings(out: Path) -> dict[tuple[str, str], str]:
    """``keytool -list -v`` of every JKS/PKCS#12 store, run in parallel (a JVM each)."""
    jobs = [(e.name, "keystore", e.keystore) for e in KEYSTORES]
    jobs += [(e.name, "truststore", e.truststore) for e in TRUSTSTORES]

    def one(job: tuple[str, str, str]) -> str:
        name, role, kind = job
        return rt.keytool_list(store_path(out, EXPECT[name], role), PASSWORD, storetype=kind)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return {(n, r): text for (n, r, _), text in zip(jobs, pool.map(one, jobs), strict=True)}


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> rt.OtherCa:
    return rt.make_other_ca(tmp_path_factory.mktemp("other-ca"))


def x509_text(cert: Path) -> str:
    return rt.openssl("x509", "-in", cert, "-noout", "-text").stdout.decode()


def extensions(text: str) -> dict[str, tuple[bool, str]]:
    """{extension name: (critical, value text)} from ``openssl x509 -text``."""
    block = re.search(r"X509v3 extensions:\n(.*?)\n    Signature Algorithm", text, re.S)
    assert block, text
    found: dict[str, tuple[bool, str]] = {}
    current = None
    for line in block.group(1).splitlines():
        if re.match(r"^ {12}\S", line):
            current, _, rest = line.strip().partition(":")
            found[current] = (rest.strip() == "critical", "")
        elif current is not None:
            crit, value = found[current]
            found[current] = (crit, (value + "\n" + line.strip()).strip())
    return found


def dates(cert: Path) -> tuple[dt.datetime, dt.datetime]:
    text = rt.openssl("x509", "-in", cert, "-noout", "-dates").stdout.decode()
    got = dict(line.split("=", 1) for line in text.strip().splitlines())
    parse = lambda s: dt.datetime.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z").replace(  # noqa: E731
        tzinfo=dt.UTC)
    return parse(got["notBefore"]), parse(got["notAfter"])


def subject(cert: Path) -> str:
    text = rt.openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253")
    return text.stdout.decode().strip().removeprefix("subject=")


# --- the layout ----------------------------------------------------------------------------

def test_every_configured_component_and_store_is_built(out: Path) -> None:
    assert sorted(p.name for p in (out / "components").iterdir()) == sorted(EXPECT)
    for e in EXPECT.values():
        d = out / "components" / e.name
        for role, kind in (("keystore", e.keystore), ("truststore", e.truststore)):
            if kind in STORE_EXT:
                assert store_path(out, e, role).is_file(), f"{e.name}: no {role}.{kind}"
        if e.keystore == "pem":
            for f in ("key.pem", "cert.pem", "chain.pem", "fullchain.pem", "ca.pem"):
                assert (d / f).is_file(), f"{e.name}: no {f}"
        if e.truststore == "pem":
            assert (d / "ca.pem").is_file()
        if e.has_key:
            assert (d / "key.pem").is_file() and (d / "cert.pem").is_file()
        else:
            assert not (d / "key.pem").exists() and not (d / "cert.pem").exists()


# --- keystores and truststores with keytool ------------------------------------------------

@pytest.mark.parametrize("e", KEYSTORES, ids=_ids(KEYSTORES))
def test_keystore_holds_one_private_key_entry_leaf_then_ca(
        e: Expect, out: Path, ca_pem: Path, listings: dict[tuple[str, str], str]) -> None:
    text = listings[(e.name, "keystore")]
    entries = rt.parse_keytool_entries(text)
    assert rt.parse_keytool_list(text) == [(e.alias, "PrivateKeyEntry", 2)], text
    leaf = rt.sha256_fingerprint(out / "components" / e.name / "cert.pem")
    assert entries[0].sha256 == [leaf, rt.sha256_fingerprint(ca_pem)], text


@pytest.mark.parametrize("e", KEYSTORES, ids=_ids(KEYSTORES))
def test_keystore_key_opens_with_the_store_password_and_matches_the_cert(
        e: Expect, out: Path, tmp_path: Path) -> None:
    """keytool copies the entry out with -srckeypass = the store password (it fails with
    "Cannot recover key" otherwise); openssl then shows the key is the certificate's."""
    copy = tmp_path / "copy.p12"
    rt.keytool("-importkeystore", "-noprompt",
               "-srckeystore", store_path(out, e, "keystore"), "-srcstoretype", e.keystore,
               "-srcstorepass:env", PV, "-srcalias", e.alias, "-srckeypass:env", PV,
               "-destkeystore", copy, "-deststoretype", "pkcs12",
               "-deststorepass:env", PV, "-destkeypass:env", PV, password=PASSWORD)
    key = rt.openssl("pkcs12", "-in", copy, "-nocerts", "-noenc", "-passin", f"env:{PV}",
                     password=PASSWORD).stdout
    pub = rt.openssl("pkey", "-pubout", input=key).stdout
    assert pub == rt.public_key_pem(out / "components" / e.name / "cert.pem", "cert")

    if e.keystore == "jks":  # a JKS key has its own password: the store's, not another
        wrong = rt.keytool("-importkeystore", "-noprompt",
                           "-srckeystore", store_path(out, e, "keystore"), "-srcstoretype", "jks",
                           "-srcstorepass:env", PV, "-srcalias", e.alias,
                           "-srckeypass:env", "WRONG_PASS", "-destkeystore", tmp_path / "w.p12",
                           "-deststoretype", "pkcs12", "-deststorepass:env", PV,
                           "-destkeypass:env", PV, password=PASSWORD, check=False,
                           extra_env={"WRONG_PASS": "not-the-password"})
        assert wrong.returncode != 0
        assert b"Cannot recover key" in wrong.stdout + wrong.stderr


@pytest.mark.parametrize("e", TRUSTSTORES, ids=_ids(TRUSTSTORES))
def test_truststore_holds_only_the_ca(e: Expect, ca_pem: Path,
                                      listings: dict[tuple[str, str], str]) -> None:
    text = listings[(e.name, "truststore")]
    assert rt.parse_keytool_list(text) == [(CA_ALIAS, "trustedCertEntry", 1)], text
    assert rt.parse_keytool_entries(text)[0].sha256 == [rt.sha256_fingerprint(ca_pem)]
    assert "PrivateKeyEntry" not in text and "SecretKeyEntry" not in text


# --- PKCS#12 encryption with openssl -------------------------------------------------------

@pytest.mark.parametrize("item", P12, ids=_ids(P12))
def test_pkcs12_encryption(item: tuple[Expect, str], out: Path) -> None:
    e, role = item
    proc = rt.openssl("pkcs12", "-info", "-noout", "-in", store_path(out, e, role),
                      "-passin", f"env:{PV}", password=PASSWORD)
    info = (proc.stdout + proc.stderr).decode()
    encrypted = re.findall(r"^(?:PKCS7 Encrypted data|Shrouded Keybag): (.*)$", info, re.M)
    assert encrypted, info
    if role == "keystore":
        assert any(line.startswith("Shrouded Keybag") for line in info.splitlines()), info
    assert "RC2" not in info and "40-bit" not in info, info
    mac = re.search(r"^MAC: (\S+), Iteration (\d+)", info, re.M)
    assert mac, info
    if e.encryption == "modern":
        assert mac.group(1) == "sha256", info
        for algo in encrypted:
            assert algo.startswith("PBES2, PBKDF2, AES-256-CBC"), info
            assert "PRF hmacWithSHA256" in algo, info
    else:
        assert mac.group(1) == "sha1", info
        for algo in encrypted:
            assert algo.startswith("pbeWithSHA1And3-KeyTripleDES-CBC"), info
    for rounds in re.findall(r"Iteration (\d+)", info):
        assert int(rounds) >= 2048, info


def test_pkcs12_encryption_covers_both_kinds() -> None:
    """The example has modern (db2) and legacy (Jenny, Imogen) PKCS#12 files."""
    kinds = {(e.name, e.encryption) for e, _ in P12}
    assert {"modern", "legacy"} <= {k for _, k in kinds}


# --- PEM components and private keys -------------------------------------------------------

@pytest.mark.parametrize("e", PEM_KEYSTORES, ids=_ids(PEM_KEYSTORES))
def test_pem_component(e: Expect, out: Path, ca_pem: Path) -> None:
    d = out / "components" / e.name
    key = (d / "key.pem").read_bytes()
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----"), "key.pem is not unencrypted PKCS#8"
    assert b"RSA PRIVATE KEY" not in key and b"ENCRYPTED" not in key
    rt.openssl("pkey", "-in", d / "key.pem", "-check", "-noout")
    assert rt.public_key_pem(d / "key.pem", "key") == rt.public_key_pem(d / "cert.pem", "cert")
    ca, leaf = rt.pem_blocks(ca_pem.read_bytes()), rt.pem_blocks((d / "cert.pem").read_bytes())
    assert len(ca) == 1 and len(leaf) == 1
    assert rt.pem_blocks((d / "fullchain.pem").read_bytes()) == leaf + ca
    assert rt.pem_blocks((d / "chain.pem").read_bytes()) == ca
    assert rt.pem_blocks((d / "ca.pem").read_bytes()) == ca


@pytest.mark.parametrize("e", KEYED, ids=_ids(KEYED))
def test_private_key_is_pkcs8_and_matches_the_cert(e: Expect, out: Path) -> None:
    d = out / "components" / e.name
    assert (d / "key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert rt.public_key_pem(d / "key.pem", "key") == rt.public_key_pem(d / "cert.pem", "cert")


# --- chains --------------------------------------------------------------------------------

@pytest.mark.parametrize("e", KEYED, ids=_ids(KEYED))
def test_openssl_verify_strict(e: Expect, out: Path, ca_pem: Path, other_ca: rt.OtherCa) -> None:
    cert = out / "components" / e.name / "cert.pem"
    ok = rt.openssl("verify", "-x509_strict", "-CAfile", ca_pem, cert)
    assert ok.stdout.decode().strip() == f"{cert}: OK"
    for usage, purpose in _EKU_PURPOSE.items():  # the EKU as openssl's purpose check sees it
        proc = rt.openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca_pem, cert,
                          check=False)
        assert (proc.returncode == 0) == (usage in e.eku), (purpose, proc.stderr.decode())
    bad = rt.openssl("verify", "-x509_strict", "-CAfile", other_ca.cert, cert, check=False)
    assert bad.returncode != 0
    assert "unable to get local issuer certificate" in (bad.stdout + bad.stderr).decode()


# --- certificate fields --------------------------------------------------------------------

def _ski(text: str) -> str:
    return extensions(text)["X509v3 Subject Key Identifier"][1].upper()


@pytest.mark.parametrize("e", KEYED, ids=_ids(KEYED))
def test_leaf_fields(e: Expect, out: Path, ca_pem: Path, ca_text: str) -> None:
    cert = out / "components" / e.name / "cert.pem"
    text = x509_text(cert)
    ext = extensions(text)
    assert subject(cert) == e.subject
    assert f"Public-Key: ({e.key_bits} bit)" in text
    assert "Signature Algorithm: sha256WithRSAEncryption" in text

    san = ext["X509v3 Subject Alternative Name"][1]
    assert [s.strip() for s in san.split(",")] == [f"DNS:{d}" for d in e.dns]
    eku = ext["X509v3 Extended Key Usage"][1]
    assert [s.strip() for s in eku.split(",")] == [_EKU_TEXT[u] for u in e.eku]
    assert ext["X509v3 Key Usage"] == (True, "Digital Signature, Key Encipherment")
    assert ext["X509v3 Basic Constraints"] == (True, "CA:FALSE")
    aki = ext["X509v3 Authority Key Identifier"][1].upper().removeprefix("KEYID:")
    assert aki == _ski(ca_text)
    assert "X509v3 Subject Key Identifier" in ext

    serial = rt.openssl("x509", "-in", cert, "-noout", "-serial").stdout.decode()
    assert int(serial.strip().split("=", 1)[1], 16).bit_length() >= 64
    not_before, not_after = dates(cert)
    assert not_before < dt.datetime.now(dt.UTC)
    assert not_after <= dates(ca_pem)[1]
    assert not_after > dt.datetime.now(dt.UTC)


def test_leaf_serials_are_unique(out: Path) -> None:
    serials = [rt.openssl("x509", "-in", out / "components" / e.name / "cert.pem", "-noout",
                          "-serial").stdout for e in KEYED]
    assert len(set(serials)) == len(serials)


def test_liberty_sans_as_configured(out: Path) -> None:
    ext = extensions(x509_text(out / "components" / "liberty" / "cert.pem"))
    assert ext["X509v3 Subject Alternative Name"][1] == "DNS:liberty.eianet, DNS:liberty"


def test_ca_fields(ca_pem: Path, ca_text: str) -> None:
    ext = extensions(ca_text)
    assert ext["X509v3 Basic Constraints"] == (True, "CA:TRUE, pathlen:0")
    assert ext["X509v3 Key Usage"] == (True, "Certificate Sign, CRL Sign")
    assert re.fullmatch(r"([0-9A-F]{2}:){19,}[0-9A-F]{2}", _ski(ca_text))
    assert "Public-Key: (4096 bit)" in ca_text and "rsaEncryption" in ca_text
    assert subject(ca_pem) == _rfc2253(CONFIG["ca"]["subject"])
    issuer = rt.openssl("x509", "-in", ca_pem, "-noout", "-issuer", "-nameopt", "RFC2253")
    assert issuer.stdout.decode().strip().removeprefix("issuer=") == subject(ca_pem)
    rt.openssl("verify", "-x509_strict", "-CAfile", ca_pem, ca_pem)  # self-signed, valid
    not_before, not_after = dates(ca_pem)
    assert not_before < dt.datetime.now(dt.UTC) < not_after


# --- file modes ----------------------------------------------------------------------------

_PUBLIC = {"cert.pem", "csr.pem", "chain.pem", "fullchain.pem", "ca.pem", "ca.crt.pem",
           "truststore.jks", "truststore.p12", "manifest.json", "verified.txt", "backend",
           ".doit.db", "image.id"}


def _is_secret(path: Path) -> bool:
    return (path.name in {"key.pem", "ca.key.pem", "credentials.properties"}
            or path.name.startswith("keystore.") or path.name.endswith(".password")
            or b"PRIVATE KEY" in path.read_bytes())


def test_modes(out: Path) -> None:
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    bad = []
    secrets = 0
    for path in sorted(out.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        rel = path.relative_to(out)
        if path.is_symlink():
            bad.append(f"{rel}: a symbolic link")
        elif path.is_dir():
            if mode & 0o077:
                bad.append(f"{rel}/: mode {mode:o}, expected 0700")
        elif _is_secret(path):
            secrets += 1
            if mode != 0o600:
                bad.append(f"{rel}: secret with mode {mode:o}, expected 0600")
        elif path.name not in _PUBLIC and mode & 0o044:
            bad.append(f"{rel}: mode {mode:o}, an unknown file readable by others")
        elif mode & 0o022 or mode & 0o111:
            bad.append(f"{rel}: mode {mode:o}, writable by others or executable")
    assert not bad, "\n".join(bad)
    assert secrets >= len(KEYED) * 2 + 1  # each key.pem and keystore, and the CA key


# --- the password stays secret -------------------------------------------------------------

def _needles(password: str) -> list[bytes]:
    return [password.encode(), password.encode("utf-16-be"), password.encode("utf-16-le")]


def _files_holding(out: Path, passwords: list[str], allowed: set[Path]) -> list[str]:
    found = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p not in allowed):
        data = path.read_bytes()
        found += [f"{path.relative_to(out)} holds {pw[:2]}…" for pw in passwords
                  if any(n in data for n in _needles(pw))]
    return found


def _password_files(out: Path) -> set[Path]:
    secrets = out / "secrets"
    return set(secrets.glob("*.password")) | {secrets / "credentials.properties"}


def test_env_password_is_in_no_output_file(out: Path) -> None:
    assert (out / ".doit.db").is_file() and (out / "manifest.json").is_file()
    leaks = _files_holding(out, [PASSWORD], _password_files(out))
    assert not leaks, leaks
    assert PASSWORD.encode() not in (out.parent / "doit.log").read_bytes()


def test_env_password_is_never_written(out: Path) -> None:
    """With $SSL_PASSWORD the password lives only in the environment: no password file, and the
    credentials file lists no password."""
    assert not list((out / "secrets").glob("*.password"))
    creds = out / "secrets" / "credentials.properties"
    if creds.exists():
        assert PASSWORD.encode() not in creds.read_bytes()


@pytest.fixture(scope="module")
def generated_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built again without SSL_PASSWORD: one generated password per store."""
    return rt.build_example(tmp_path_factory.mktemp("generated"), {"SSL_PASSWORD": None})


def test_generated_passwords_are_in_no_other_file(generated_out: Path) -> None:
    out = generated_out
    files = sorted((out / "secrets").glob("*.password"))
    expected = {f"{e.name}.{r}.password" for e in EXPECT.values()
                for r, k in (("keystore", e.keystore), ("truststore", e.truststore))
                if k in STORE_EXT}
    assert {f.name for f in files} == expected
    passwords = [f.read_text().strip() for f in files]
    assert all(len(p) >= 16 for p in passwords)
    assert len(set(passwords)) == len(passwords), "a generated password is reused"
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    creds = (out / "secrets" / "credentials.properties").read_text()
    for f, pw in zip(files, passwords, strict=True):
        assert f"{f.name.removesuffix('.password')}.password={pw}" in creds.splitlines()
    leaks = _files_holding(out, passwords, _password_files(out))
    assert not leaks, leaks
    log = (out.parent / "doit.log").read_bytes()
    assert not [pw for pw in passwords if pw.encode() in log]


def test_generated_passwords_open_their_stores(generated_out: Path) -> None:
    out = generated_out
    sec = out / "secrets"
    liberty = EXPECT["liberty"]
    for role in ("keystore", "truststore"):
        pw = (sec / f"liberty.{role}.password").read_text().strip()
        listing = rt.keytool_list(store_path(out, liberty, role), pw, storetype="jks")
        assert len(rt.parse_keytool_list(listing)) == 1
    for e, role in P12:
        pw = (sec / f"{e.name}.{role}.password").read_text().strip()
        rt.openssl("pkcs12", "-info", "-noout", "-in", store_path(out, e, role),
                   "-passin", f"env:{PV}", password=pw)
