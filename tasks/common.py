"""Shared pieces of every stage: the user-error wrapper and certificate loading."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from doit.exceptions import TaskFailed

from .adapters import fs
from .config import Component, Config
from .errors import PkiError


def user_errors(stage: str, component: str | None = None) -> Callable[..., Any]:
    """Turn a PkiError into doit's TaskFailed: one line, no traceback. Bugs keep theirs."""
    prefix = f"{stage} {component}" if component else stage

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def action(*args: Any, **kwargs: Any) -> Any:
            try:
                result = func(*args, **kwargs)
            except PkiError as exc:
                return TaskFailed(f"error: {prefix}: {exc}")
            except OSError as exc:  # the output folder is read-only, full, or not a folder
                where = f"{exc.filename}: " if exc.filename else ""
                return TaskFailed(f"error: {prefix}: cannot write {where}{exc.strerror or exc} "
                                  "(check the output folder, PKI_OUTPUT)")
            return result if result is not None else True
        return action
    return wrap


def action(stage: str, component: str | None, func: Callable[..., Any], *args: Any) -> tuple:
    """A doit python-action tuple running func(*args) behind user_errors."""
    return (user_errors(stage, component)(func), list(args))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_cert(path: Path) -> x509.Certificate | None:
    data = fs.read(path)
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """The certificate names this CA as issuer and carries a valid signature from its key."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def layout(cfg: Config) -> fs.Layout:
    return fs.Layout(cfg.output)


def keyed(cfg: Config) -> list[Component]:
    """Components that have a key and so a CSR and a certificate."""
    return [c for c in cfg.components.values() if c.has_key]
