"""Deploy targets of a component (``[[components.<name>.deploy]]``), parsed and validated for
tasks/config.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ARTEFACTS = ("keystore", "truststore", "key", "cert", "chain", "fullchain", "ca")
SECRET = {"keystore", "key"}
_KEYS = {"container", "path", "owner", "secret_mode", "public_mode", "files", "docker_host",
         "required"}
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Target:
    """One container (on one engine) that receives a component's stores."""

    container: str
    path: str
    uid: int
    gid: int
    secret_mode: int
    public_mode: int
    files: tuple[tuple[str, str], ...]  # (artefact, file name) overrides
    docker_host: str | None
    required: bool

    @property
    def engine(self) -> str:
        return self.docker_host or "default"

    @property
    def key(self) -> str:
        return f"{self.engine}|{self.container}|{self.path}"

    def name_of(self, artefact: str, default: str) -> str:
        return dict(self.files).get(artefact, default)

    def mode_of(self, artefact: str) -> int:
        return self.secret_mode if artefact in SECRET else self.public_mode


def _mode(fail: Any, where: str, value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        mode = int(value, 8) if isinstance(value, str) else int(value)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        fail(where, f"{value!r} is not a file mode (write it as a string, e.g. \"0640\")")
        return default
    return mode


def parse(fail: Any, prefix: str, raw: Any) -> tuple[Target, ...]:
    """Targets from the raw TOML list; problems go to ``fail(key, message)``."""
    if not isinstance(raw, list):
        fail(prefix, "must be [[...deploy]] tables")
        return ()
    out = []
    for i, t in enumerate(raw):
        p = f"{prefix}[{i}]"
        if not isinstance(t, dict):
            fail(p, "must be a table")
            continue
        for unknown in sorted(set(t) - _KEYS):
            fail(f"{p}.{unknown}", f"unknown setting (known: {', '.join(sorted(_KEYS))})")
        container, path = t.get("container"), t.get("path")
        if not isinstance(container, str) or not _CONTAINER.match(container):
            fail(f"{p}.container", f"{container!r} is not a container name (set one)")
        if (not isinstance(path, str) or not _PATH.match(path) or "/../" in path + "/"
                or "/./" in path + "/"):
            fail(f"{p}.path", f"{path!r} must be an absolute folder path of letters, digits, "
                 "'.', '_', '-' and '/'")
        owner = t.get("owner", "0:0")
        match = re.match(r"^(\d+):(\d+)$", owner) if isinstance(owner, str) else None
        if not match:
            fail(f"{p}.owner", f"{owner!r} must be \"uid:gid\" in numbers, e.g. \"1000:1000\"")
        files = t.get("files", {})
        if not isinstance(files, dict):
            fail(f"{p}.files", "must be a table of <artefact> = \"<file name>\"")
            files = {}
        for art, name in files.items():
            if art not in ARTEFACTS:
                fail(f"{p}.files.{art}", f"not an artefact (use {', '.join(ARTEFACTS)})")
            elif not isinstance(name, str) or not _FILE.match(name):
                fail(f"{p}.files.{art}", f"{name!r} is not a plain file name")
        host = t.get("docker_host")
        if host is not None and (not isinstance(host, str) or "://" not in host):
            fail(f"{p}.docker_host", f"{host!r} is not an engine URL (unix://, tcp://, ssh://)")
        required = t.get("required", True)
        if not isinstance(required, bool):
            fail(f"{p}.required", f"{required!r} must be true or false")
        out.append(Target(
            container=str(container), path=str(path).rstrip("/") or "/",
            uid=int(match.group(1)) if match else 0, gid=int(match.group(2)) if match else 0,
            secret_mode=_mode(fail, f"{p}.secret_mode", t.get("secret_mode"), 0o600),
            public_mode=_mode(fail, f"{p}.public_mode", t.get("public_mode"), 0o644),
            files=tuple(sorted((str(a), str(n)) for a, n in files.items())),
            docker_host=host, required=bool(required)))
    return tuple(out)
