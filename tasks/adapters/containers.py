"""Copy files into component containers and read them back, through the Docker API only (no
shell needed in the target; created and running containers alike)."""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import tarfile
import time
from pathlib import PurePosixPath
from typing import Any

from ..errors import EngineError
from .docker import APIError, NotFound  # the docker package is imported only there


def containers_by_name(client: Any) -> dict[str, str]:
    """Every container on the engine, name → id, in one API call (the no-op deploy check)."""
    out = {}
    for c in client.api.containers(all=True):
        for name in c.get("Names") or []:
            out[name.lstrip("/")] = c["Id"]
    return out


def _existing_ancestor(client: Any, container_id: str, folder: PurePosixPath) -> PurePosixPath:
    """The deepest folder of ``folder`` that exists in the container."""
    path = folder
    while str(path) != "/":
        try:
            stream, _stat = client.api.get_archive(container_id, str(path))
            stream.close() if hasattr(stream, "close") else None
            return path
        except NotFound:
            path = path.parent
    return path


def _tar(entries: list[tuple[str, bytes | None, int, int, int]]) -> bytes:
    """An in-memory tar; a None payload is a folder. Owner and mode travel in the headers."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode, uid, gid in entries:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mode, info.mtime = uid, gid, mode, now
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _has_shell(client: Any, container_id: str) -> bool:
    try:
        exec_id = client.api.exec_create(container_id, ["sh", "-c", "command -v mv"])
        client.api.exec_start(exec_id)
        return client.api.exec_inspect(exec_id).get("ExitCode") == 0
    except APIError:
        return False


def put_files(client: Any, container_id: str, folder: str, files: list[tuple[str, bytes, int]],
              uid: int, gid: int) -> str:
    """Copy files into ``folder`` (created 0755 with the owner when missing) with owner and
    modes set; returns how they were replaced: ``atomic`` (temporary name + rename in a running
    container with a shell), ``stopped`` (nothing runs to read them) or ``in place``."""
    dest = PurePosixPath(folder)
    base = _existing_ancestor(client, container_id, dest)
    missing = list(reversed([p for p in [dest, *dest.parents] if len(p.parts) > len(base.parts)]))
    running = client.api.inspect_container(container_id)["State"].get("Running", False)
    atomic = running and _has_shell(client, container_id)
    suffix = f".pki-{os.getpid()}-{time.time_ns()}"
    entries: list[tuple[str, bytes | None, int, int, int]] = [
        (str(p.relative_to(base)), None, 0o755, uid if p == dest else 0, gid if p == dest else 0)
        for p in missing]
    rel = dest.relative_to(base)
    for name, data, mode in files:
        target = rel / (("." + name + suffix) if atomic else name)
        entries.append((str(target), data, mode, uid, gid))
    if not client.api.put_archive(container_id, str(base), _tar(entries)):
        raise EngineError(f"the engine refused the copy into {folder}")
    if not atomic:
        return "stopped" if not running else "in place"
    script = " && ".join(f"mv -f {shlex.quote(str(dest / ('.' + n + suffix)))} "
                         f"{shlex.quote(str(dest / n))}" for n, _, _ in files)
    exec_id = client.api.exec_create(container_id, ["sh", "-c", script])
    output = client.api.exec_start(exec_id)
    if client.api.exec_inspect(exec_id).get("ExitCode") != 0:
        raise EngineError(f"renaming the copied files in {folder} failed: "
                          f"{output.decode(errors='replace').strip()[:200]}")
    return "atomic"


def remove_files(client: Any, container_id: str, folder: str, names: list[str]) -> bool:
    """Remove files (a store type no longer deployed) where the container has a shell."""
    if not names or not _has_shell(client, container_id):
        return not names
    paths = " ".join(shlex.quote(str(PurePosixPath(folder) / n)) for n in names)
    exec_id = client.api.exec_create(container_id, ["sh", "-c", f"rm -f -- {paths}"])
    client.api.exec_start(exec_id)
    return client.api.exec_inspect(exec_id).get("ExitCode") == 0


def read_files(client: Any, container_id: str, folder: str, names: list[str]
               ) -> dict[str, tuple[str, int, int, int]]:
    """name → (sha256, uid, gid, mode) of files in ``folder``, read back through the API."""
    try:
        stream, _stat = client.api.get_archive(container_id, folder)
    except NotFound:
        return {}
    data = b"".join(stream)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name).name
            if member.isfile() and name in names and len(PurePosixPath(member.name).parts) == 2:
                content = tar.extractfile(member)
                digest = hashlib.sha256(content.read() if content else b"").hexdigest()
                out[name] = (digest, member.uid, member.gid, member.mode & 0o7777)
    return out
