"""Store passwords: environment variable, password file, terminal prompt, or one generated per
store and kept 0600 under output/secrets. Only the source's name is ever recorded."""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from pathlib import Path

from .adapters import fs
from .config import Component
from .errors import PasswordError

MIN_LENGTH = 6  # keytool refuses shorter store passwords
_prompted: dict[str, str] = {}


def _prompt_allowed() -> bool:
    """On a terminal, unless PKI_NO_PROMPT. dodo.py decides once, in doit's main process, and
    passes it on in PKI_PROMPT: `doit -n` workers have no terminal but must not fall back to
    generating other passwords."""
    if os.environ.get("PKI_NO_PROMPT", ""):
        return False
    if "PKI_PROMPT" in os.environ:
        return os.environ["PKI_PROMPT"] == "1"
    return sys.stdin.isatty()


def decide_prompt() -> None:
    """Called once at load, in the main process (see _prompt_allowed)."""
    os.environ["PKI_PROMPT"] = "1" if (sys.stdin.isatty()
                                       and not os.environ.get("PKI_NO_PROMPT", "")) else "0"


def prompted_marker(layout: fs.Layout) -> Path:
    """Present when stores were made with a typed password (never the password itself)."""
    return layout.secrets / "prompted"


def source(layout: fs.Layout, comp: Component, role: str) -> str:
    """``env:NAME``, ``file:<path>`` or ``prompt``: recorded in the manifest and in doit's state."""
    if os.environ.get(comp.password.env):
        return f"env:{comp.password.env}"
    if comp.password.file is not None:
        return f"file:{comp.password.file}"
    if _prompt_allowed() or prompted_marker(layout).exists():
        return "prompt"  # also without a terminal: a no-op run must not look like a change
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
        if not ask:
            return None
        value = _prompt(comp.password.env)
        fs.write(prompted_marker(layout), b"", secret=True)
        return value
    path = layout.password_file(comp.name, role)
    data = fs.read(path)
    if data is not None:
        return _check(data.decode().rstrip("\n"), str(path))
    if not create:
        return None
    if prompted_marker(layout).exists():
        raise PasswordError(f"the stores were made with a password typed at a prompt and "
                            f"there is no terminal now (set ${comp.password.env} or a "
                            f"password_file, or delete {prompted_marker(layout)} to switch to "
                            "generated passwords)")
    value = secrets.token_urlsafe(18)
    fs.write(path, value.encode() + b"\n", secret=True)
    return value


def _prompt(env: str, tries: int = 3) -> str:
    """Ask twice on the terminal, once per process; the answer lives only in memory. After
    ``tries`` failed attempts every later call fails at once (no endless re-prompting)."""
    if env not in _prompted and not sys.stdin.isatty():
        raise PasswordError(f"the store password is typed at a prompt, and `doit -n` workers "
                            f"have no terminal (set ${env} or settings.password_file, or run "
                            "without -n)")
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
