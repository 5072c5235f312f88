"""Test helpers for a real Docker engine: a FROM-scratch base image of host busybox + openssl."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

BASE_TAG = "pki-test-base:latest"
BUSYBOX = Path("/bin/busybox")
OPENSSL = Path("/usr/bin/openssl")
OPENSSL_CNF = Path("/usr/lib/ssl/openssl.cnf")
_DOCKERFILE = b"FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n"


def unique(prefix: str) -> str:
    """A name no other test run uses, for containers, volumes and tags."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def shared_libraries(binary: Path) -> list[Path]:
    """Every library and the loader ``ldd`` lists for a binary (vdso excluded)."""
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        match = re.search(r"(/\S+)", line.split("=>")[-1])
        if match:
            paths.append(Path(match.group(1)))
    return paths


def _add_file(tar: tarfile.TarFile, source: Path, target: str, mode: int = 0o755) -> None:
    """Add a host file by content (symlinks followed) at ``rootfs/<target>``."""
    data = source.read_bytes()
    info = tarfile.TarInfo(f"rootfs/{target.lstrip('/')}")
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, target: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(f"rootfs/{target.lstrip('/')}")
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, target: str, points_to: str) -> None:
    info = tarfile.TarInfo(f"rootfs/{target.lstrip('/')}")
    info.type, info.linkname = tarfile.SYMTYPE, points_to
    tar.addfile(info)


def busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True)
    return [a for a in out.stdout.split() if a and "/" not in a and a != "busybox"]


def base_context() -> bytes:
    """The build context of the scratch base image, as an in-memory tar."""
    files = {OPENSSL: str(OPENSSL)} | {lib: str(lib) for lib in shared_libraries(OPENSSL)}
    if OPENSSL_CNF.exists():
        files[OPENSSL_CNF] = str(OPENSSL_CNF)
    folders = {"/bin", "/etc"} | {str(p) for t in files.values() for p in Path(t).parents}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_DOCKERFILE))
        for folder in sorted(folders - {"/"}):
            _add_dir(tar, folder)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, BUSYBOX, "bin/busybox")
        for applet in busybox_applets():
            _add_link(tar, f"bin/{applet}", "busybox")
        for source, target in files.items():
            _add_file(tar, source, target, 0o644 if target.endswith(".cnf") else 0o755)
    return buf.getvalue()


def build_base_image(client: Any, tag: str = BASE_TAG) -> str:
    """Build the scratch base image (busybox sh + host openssl) and return its tag."""
    client.images.build(fileobj=io.BytesIO(base_context()), custom_context=True, tag=tag,
                        pull=False, rm=True, forcerm=True)
    return tag


def remove_image(client: Any, ref: str) -> None:
    """Best-effort removal of an image a test built."""
    try:
        client.images.remove(ref, force=True, noprune=False)
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
        pass


def remove_container(client: Any, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True, v=True)
    except Exception:  # noqa: BLE001
        pass


def remove_volume(client: Any, name: str) -> None:
    try:
        client.volumes.get(name).remove(force=True)
    except Exception:  # noqa: BLE001
        pass


def leaf_request(subject: str, profile: Any, dns: tuple[str, ...] = (), ip: tuple[str, ...] = (),
                 rsa_key: bool = True, days: int = 365) -> Any:
    """An IssueRequest as the sign stage makes it, valid from five minutes ago."""
    import datetime as dt

    from tasks.pki import names, profiles

    now = dt.datetime.now(dt.UTC)
    start, end = profiles.validity(now, days, now + dt.timedelta(days=3650))
    name = names.parse_subject(subject)
    return profiles.IssueRequest(name, profiles.effective_dns(profile, name, list(dns)), ip,
                                 profile, start, end, rsa_key)


def sign_in_process(container: str, count: int, prefix: str) -> list[int]:
    """Sign ``count`` EC leaves through one DockerSigner (run in a child process); serials."""
    from cryptography import x509

    from tasks.adapters import docker as adapter
    from tasks.adapters import signing
    from tasks.pki import keys, names, profiles, signer

    client = adapter.connect()
    profile = profiles.Profile("client", ("digital_signature",), ("client_auth",))
    serials = []
    with signing.DockerSigner(client, container) as ca:
        for i in range(count):
            subject = f"CN={prefix}-{i}, O=i2Group, C=GB"
            key = keys.generate(keys.parse_spec("ec:p256"))
            csr = signer.build_csr(key, names.parse_subject(subject), [], [])
            pem = ca.sign(csr, leaf_request(subject, profile, rsa_key=False))
            serials.append(x509.load_pem_x509_certificate(pem).serial_number)
    client.close()
    return serials
