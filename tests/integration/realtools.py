"""Helpers for the integration tests that check the build with the real tools (keytool, openssl,
java): build the example deployment in a scratch folder, list stores, run tools without ever
putting a password in argv, and make a throwaway CA that the build's CA did not sign.

A plain module (no tests). Passwords always travel in environment variables: keytool reads
``-storepass:env NAME``, openssl ``-passin env:NAME``; ``run`` refuses an argv holding a secret.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "changeit1"  # the example build's store password ($SSL_PASSWORD)
PASS_VAR = "I2PKI_TEST_STOREPASS"  # environment variable the tools read the password from
_COPIED = ("dodo.py", "tasks", "config")
# Inherited settings that would make a build depend on the caller's shell.
_SCRUBBED_PREFIXES = ("PKI_",)
_SCRUBBED = ("SSL_PASSWORD",)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED}


def run(cmd: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (), check: bool = True, timeout: float = 120,
        cwd: Path | None = None, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a tool with extra environment variables; fail if a secret is in argv, and (with
    check) if the tool fails, showing its output. Output is bytes (stdout, stderr)."""
    argv = [str(a) for a in cmd]
    extra = dict(env or {})
    for secret in secrets:
        assert not secret or not any(secret in a for a in argv), (
            f"a password would be in the argv of {argv[0]}")
    proc = subprocess.run(argv, env={**os.environ, **extra}, capture_output=True,
                          timeout=timeout, cwd=cwd, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(argv)} exited {proc.returncode}\n--- stdout\n"
            f"{proc.stdout.decode(errors='replace')}\n--- stderr\n"
            f"{proc.stderr.decode(errors='replace')}")
    return proc


def build_example(dest: Path, env: dict[str, str | None] | None = None) -> Path:
    """Copy dodo.py, tasks/ and config/ from the repository into dest and run ``python3 -m doit``
    there (SSL_PASSWORD=changeit1, PKI_CA_BACKEND=local, PKI_NO_PROMPT=1, stdin closed).

    ``env`` overrides those; a value of None removes the variable (``{"SSL_PASSWORD": None}``
    builds with generated passwords). Inherited PKI_* and SSL_PASSWORD are dropped so that the
    caller's shell cannot change the build. doit's output is kept in dest/doit.log (outside
    output/). Returns dest/"output"."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
    for name in _COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    full = _clean_env()
    full.update({"SSL_PASSWORD": PASSWORD, "PKI_CA_BACKEND": "local", "PKI_NO_PROMPT": "1"})
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run([sys.executable, "-m", "doit"], cwd=dest, env=full,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600)
    (dest / "doit.log").write_bytes(proc.stdout)
    assert proc.returncode == 0, (f"`python3 -m doit` in {dest} exited {proc.returncode}:\n"
                                  + proc.stdout.decode(errors="replace"))
    return dest / "output"


# --- keytool ---------------------------------------------------------------------------------

_KEYTOOL_LOCALE = ["-J-Duser.language=en", "-J-Duser.country=US"]


def keytool(*args: str | os.PathLike[str], password: str, check: bool = True,
            extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """keytool with English messages; the password is in $I2PKI_TEST_STOREPASS (use
    ``-storepass:env I2PKI_TEST_STOREPASS``-style options in args)."""
    return run(["keytool", *_KEYTOOL_LOCALE, *args], env={PASS_VAR: password, **(extra_env or {})},
               secrets=[password], check=check)


def keytool_list(path: Path, password: str, storetype: str | None = None) -> str:
    """``keytool -list -v`` of a store (type autodetected unless given, e.g. "pkcs12"); the
    password is passed with ``-storepass:env``, never in argv. Returns stdout."""
    args: list[str | os.PathLike[str]] = ["-list", "-v", "-keystore", path,
                                          "-storepass:env", PASS_VAR]
    if storetype:
        args += ["-storetype", storetype]
    return keytool(*args, password=password).stdout.decode()


@dataclass
class KeytoolEntry:
    alias: str
    entry_type: str  # PrivateKeyEntry, trustedCertEntry, SecretKeyEntry
    chain_length: int  # certificates shown for the entry (1 for a trustedCertEntry)
    sha256: list[str] = field(default_factory=list)  # "AB:CD:..." per certificate, in order


def parse_keytool_entries(text: str) -> list[KeytoolEntry]:
    """Entries of ``keytool -list -v`` output (English), with each certificate's SHA-256."""
    entries: list[KeytoolEntry] = []
    declared = re.search(r"Your keystore contains (\d+) entr", text)
    for block in re.split(r"^Alias name: ", text, flags=re.M)[1:]:
        alias = block.splitlines()[0].strip()
        kind = re.search(r"^Entry type: (\S+)", block, re.M)
        length = re.search(r"^Certificate chain length: (\d+)", block, re.M)
        prints = re.findall(r"^\s*SHA256: ([0-9A-F:]+)", block, re.M)
        entries.append(KeytoolEntry(alias, kind.group(1) if kind else "?",
                                    int(length.group(1)) if length else len(prints), prints))
    if declared:
        assert int(declared.group(1)) == len(entries), f"parsed {len(entries)} of:\n{text}"
    return entries


def parse_keytool_list(text: str) -> list[tuple[str, str, int]]:
    """[(alias, entry_type, chain_length)] of ``keytool -list -v`` output."""
    return [(e.alias, e.entry_type, e.chain_length) for e in parse_keytool_entries(text)]


# --- openssl ---------------------------------------------------------------------------------

def openssl(*args: str | os.PathLike[str], password: str | None = None, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """openssl; a password goes in $I2PKI_TEST_STOREPASS (``-passin env:I2PKI_TEST_STOREPASS``)."""
    env = {PASS_VAR: password} if password is not None else {}
    return run(["openssl", *args], env=env, secrets=[password] if password else [], check=check,
               input=input)


def sha256_fingerprint(cert: Path) -> str:
    """The certificate's SHA-256 fingerprint as keytool prints it (``AB:CD:...``)."""
    out = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout.decode()
    return out.strip().split("=", 1)[1].upper()


def public_key_pem(path: Path, kind: str) -> bytes:
    """The SubjectPublicKeyInfo PEM of a certificate (kind "cert") or a private key ("key")."""
    if kind == "cert":
        return openssl("x509", "-in", path, "-noout", "-pubkey").stdout
    return openssl("pkey", "-in", path, "-pubout").stdout


def pem_blocks(data: bytes) -> list[bytes]:
    """The PEM blocks of a file, normalised (one per certificate/key)."""
    return [m.group(0) for m in re.finditer(
        rb"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----", data, re.S)]


@dataclass(frozen=True)
class OtherCa:
    """A throwaway CA unrelated to the build's CA."""

    cert: Path
    key: Path


def make_other_ca(dest: Path, cn: str = "i2CA") -> OtherCa:
    """A self-signed CA with the same kind of name as the real one but another key."""
    dest.mkdir(parents=True, exist_ok=True)
    ca = OtherCa(dest / "other-ca.crt.pem", dest / "other-ca.key.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-noenc", "-keyout", ca.key, "-out", ca.cert,
            "-days", "2", "-subj", f"/C=GB/O=Impostor/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    return ca


def issue_other(ca: OtherCa, dest: Path, name: str, cn: str, dns: Sequence[str],
                eku: str) -> tuple[Path, Path]:
    """A leaf (cert.pem, key.pem) signed by the throwaway CA, e.g. eku "clientAuth"."""
    dest.mkdir(parents=True, exist_ok=True)
    key, csr, cert = dest / f"{name}.key.pem", dest / f"{name}.csr.pem", dest / f"{name}.crt.pem"
    ext = dest / f"{name}.ext"
    sans = ",".join(f"DNS:{d}" for d in dns)
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   f"extendedKeyUsage={eku}\n" + (f"subjectAltName={sans}\n" if sans else "")
                   + "authorityKeyIdentifier=keyid\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-noenc", "-keyout", key, "-out", csr,
            "-subj", f"/C=GB/CN={cn}")
    openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
            "-days", "1", "-sha256", "-extfile", ext, "-out", cert)
    return cert, key


def jks_truststore_of(cert: Path, dest: Path, password: str, alias: str = "other") -> Path:
    """A JKS truststore holding only cert, made by keytool."""
    keytool("-importcert", "-noprompt", "-alias", alias, "-file", cert, "-keystore", dest,
            "-storetype", "jks", "-storepass:env", PASS_VAR, password=password)
    return dest
