"""The ``keygen`` stage: one private key per component, kept across re-signing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from doit.tools import config_changed

from . import common
from .adapters import fs
from .config import Component, Config
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
    comp = cfg.components[name]
    assert comp.key is not None
    fs.write(common.layout(cfg).key(name), keys.to_pem(keys.generate(comp.key)), secret=True)


def settings(comp: Component) -> dict[str, Any]:
    return {"key": str(comp.key)}


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """generate a component's private key (PKCS#8, 0600)"""
    for comp in common.keyed(cfg):
        yield {
            "name": comp.name,
            "doc": f"private key {comp.key} for {comp.name}",
            "actions": [common.action("keygen", comp.name, generate, cfg, comp.name)],
            "targets": [common.layout(cfg).key(comp.name)],
            "uptodate": [config_changed(settings(comp)), (key_ok, [cfg, comp.name])],
        }
