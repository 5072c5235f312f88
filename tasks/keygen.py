"""The ``keygen`` stage: one private key per component, kept across re-signing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import common
from .adapters import fs
from .config import Config
from .pki import keys


def key_ok(cfg: Config, name: str) -> bool:
    """The key file loads and is of the configured type and size (a damaged key is rebuilt)."""
    comp = cfg.components[name]
    data = fs.read(common.layout(cfg).key(name))
    try:
        return data is not None and keys.spec_of(keys.load_pem(data)) == comp.key
    except ValueError:
        return False


def generate(cfg: Config, name: str) -> None:
    if key_ok(cfg, name):
        return  # doit had no record of it (state file lost): the key is right, keep it
    comp = cfg.components[name]
    assert comp.key is not None
    fs.write(common.layout(cfg).key(name), keys.to_pem(keys.generate(comp.key)), secret=True)


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """generate a component's private key (PKCS#8, 0600)"""
    for comp in common.keyed(cfg):
        yield {
            "name": comp.name,
            "doc": f"private key {comp.key} for {comp.name}",
            "actions": [common.action("keygen", comp.name, generate, cfg, comp.name)],
            "targets": [common.layout(cfg).key(comp.name)],
            # No config_changed: the key file itself says its type and size, so losing doit's
            # state file never regenerates a key.
            "uptodate": [(key_ok, [cfg, comp.name])],
        }
