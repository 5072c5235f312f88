"""Output layout and atomic writes: secrets 0600 in 0700 folders, public files 0644."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

STORE_EXT = {"jks": "jks", "pkcs12": "p12"}


@dataclass(frozen=True)
class Layout:
    """Fixed artefact names under the output folder (deleting it is a full reset)."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / ".doit.db"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt.pem"

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / "ca.key.pem"

    @property
    def ca_backend(self) -> Path:
        """Which backend holds the CA key; switching backends must be explicit."""
        return self.ca_dir / "backend"

    @property
    def ca_image_id(self) -> Path:
        return self.ca_dir / "image.id"

    @property
    def ca_base_id(self) -> Path:
        return self.ca_dir / "base.id"

    @property
    def ca_container_id(self) -> Path:
        """The CA container `ca` last checked: another one (recreated elsewhere) is re-checked."""
        return self.ca_dir / "container.id"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def credentials(self) -> Path:
        return self.secrets / "credentials.properties"

    def password_file(self, component: str, role: str) -> Path:
        return self.secrets / f"{component}.{role}.password"

    def dir(self, component: str) -> Path:
        return self.root / "components" / component

    def key(self, c: str) -> Path:
        return self.dir(c) / "key.pem"

    def csr(self, c: str) -> Path:
        return self.dir(c) / "csr.pem"

    def cert(self, c: str) -> Path:
        return self.dir(c) / "cert.pem"

    def verified(self, c: str) -> Path:
        return self.dir(c) / "verified.txt"

    def store(self, c: str, role: str, kind: str) -> Path:
        """keystore.jks / truststore.p12; a PEM keystore is key.pem, a PEM truststore ca.pem."""
        if kind == "pem":
            return self.key(c) if role == "keystore" else self.dir(c) / "ca.pem"
        return self.dir(c) / f"{role}.{STORE_EXT[kind]}"

    def pem_extras(self, c: str) -> dict[str, Path]:
        """The PEM files beside key.pem and cert.pem that a PEM keystore adds."""
        return {"chain": self.dir(c) / "chain.pem", "fullchain": self.dir(c) / "fullchain.pem",
                "ca": self.dir(c) / "ca.pem"}

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def ensure_dir(path: Path) -> None:
    """Create a folder and its parents 0700: output holds keys and passwords."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):  # mkdir(parents=True) would give parents the umask's mode
        folder.mkdir(mode=0o700, exist_ok=True)
    if not path.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(path))


def write(path: Path, data: bytes, secret: bool) -> None:
    """Write atomically (temporary file, fsync, rename) with 0600 for secrets, 0644 otherwise,
    so that a reader never sees half a file and a crash never leaves a damaged one."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> bytes | None:
    """The file's bytes, or None when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_word(path: Path) -> str:
    """A one-line record (a backend name, an image id), or "" when missing."""
    return (read(path) or b"").decode().strip()


def write_word(path: Path, word: str) -> None:
    write(path, word.encode() + b"\n", secret=False)
