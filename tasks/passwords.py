"""Store passwords: environment variable, password file, terminal prompt, or one generated per
store and kept 0600 under output/secrets. Only the source's name is ever recorded."""

from __future__ import annotations

import getpass
import os
import secrets
import sys

from .adapters import fs
from .config import Component
from .errors import PasswordError

MIN_LENGTH = 6  # keytool refuses shorter store passwords
_prompted: dict[str, str] = {}


def _prompt_allowed() -> bool:
    return sys.stdin.isatty() and os.environ.get("PKI_NO_PROMPT", "") == ""


def source(layout: fs.Layout, comp: Component, role: str) -> str:
    """``env:NAME``, ``file:<path>`` or ``prompt``: recorded in the manifest and in doit's state."""
    if os.environ.get(comp.password.env):
        return f"env:{comp.password.env}"
    if comp.password.file is not None:
        return f"file:{comp.password.file}"
    if _prompt_allowed():
        return "prompt"
    return f"file:{layout.rel(layout.password_file(comp.name, role))}"


def _check(value: str, where: str) -> str:
    if not all(" " <= ch <= "~" for ch in value):
        raise PasswordError(f"{where}: the password has characters outside printable ASCII, "
                            "which Java and OpenSSL encode differently in PKCS#12 stores "
                            "(use letters, digits and ASCII punctuation)")
    if len(value) < MIN_LENGTH:
        raise PasswordError(f"{where}: the password has {len(value)} characters, at least "
                            f"{MIN_LENGTH} are needed (keytool refuses shorter ones)")
    return value


def get(layout: fs.Layout, comp: Component, role: str, create: bool,
        ask: bool = True) -> str | None:
    """The store password, or None when it would have to be generated and create is False,
    or asked on the terminal and ask is False."""
    env = os.environ.get(comp.password.env)
    if env:
        return _check(env, f"${comp.password.env}")
    if comp.password.file is not None:
        data = fs.read(comp.password.file)
        if data is None:
            raise PasswordError(f"{comp.password.file}: cannot read the password file "
                                f"(create it, or set ${comp.password.env})")
        return _check(data.decode("utf-8", "replace").rstrip("\r\n"), str(comp.password.file))
    if _prompt_allowed():
        return _prompt(comp.password.env) if ask else None
    path = layout.password_file(comp.name, role)
    data = fs.read(path)
    if data is not None:
        return _check(data.decode().rstrip("\n"), str(path))
    if not create:
        return None
    value = secrets.token_urlsafe(18)
    fs.write(path, value.encode() + b"\n", secret=True)
    return value


def _prompt(env: str, tries: int = 3) -> str:
    """Ask twice on the terminal, once per process; the answer lives only in memory. After
    ``tries`` failed attempts every later call fails at once (no endless re-prompting)."""
    if env not in _prompted:
        _prompted[env] = ""
        for _ in range(tries):
            first = getpass.getpass("Store password: ")
            try:
                if first != getpass.getpass("Store password (again): "):
                    raise PasswordError("the two passwords differ")
                _prompted[env] = _check(first, "prompt")
                break
            except PasswordError as exc:
                print(f"{exc}; try again", file=sys.stderr)
    if not _prompted[env]:
        raise PasswordError(f"no usable password after {tries} tries at the prompt "
                            f"(run again, or set ${env})")
    return _prompted[env]


def credentials(layout: fs.Layout, names: list[tuple[str, str]]) -> bytes:
    """An i2-style credentials.properties of the generated passwords (0600, under secrets/)."""
    lines = ["# Generated store passwords; keep this file secret."]
    for comp, role in names:
        data = fs.read(layout.password_file(comp, role))
        if data is not None:
            lines.append(f"{comp}.{role}.password={data.decode().strip()}")
    return ("\n".join(lines) + "\n").encode()
