"""The ``stores`` stage: each component's keystore (JKS, PKCS#12 or PEM) and truststore."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from . import common, passwords
from .adapters import fs
from .config import Component, Config
from .errors import PkiError
from .pki import keys, stores


def roles(comp: Component) -> list[tuple[str, str]]:
    """(role, type) of each store the component has."""
    return [(r, t) for r, t in (("keystore", comp.keystore), ("truststore", comp.truststore))
            if t != "none"]


def targets(layout: fs.Layout, comp: Component) -> list[Path]:
    """Files this stage writes (a PEM keystore reuses key.pem and cert.pem from keygen/sign)."""
    out: list[Path] = []
    for role, kind in roles(comp):
        if kind == "pem" and role == "keystore":
            out += [p for n, p in layout.pem_extras(comp.name).items()]
        else:
            out.append(layout.store(comp.name, role, kind))
    return sorted(set(out))


def settings(cfg: Config, comp: Component) -> dict[str, Any]:
    layout = common.layout(cfg)
    return {"stores": roles(comp), "encryption": comp.encryption, "alias": comp.alias,
            "ca_alias": cfg.ca.alias,
            "password_sources": [passwords.source(layout, comp, r) for r, t in roles(comp)
                                 if t != "pem"]}


class Material:
    """The inputs of a component's stores, loaded once."""

    def __init__(self, cfg: Config, comp: Component) -> None:
        layout = common.layout(cfg)
        ca = common.load_cert(layout.ca_cert)
        if ca is None:
            raise PkiError(f"{layout.ca_cert} is missing or unreadable (run `doit ca`)")
        self.ca = ca
        self.key: keys.PrivateKey | None = None
        self.chain = [ca]
        if comp.has_key:
            cert = common.load_cert(layout.cert(comp.name))
            if cert is None:
                raise PkiError(f"{layout.cert(comp.name)} is missing (run `doit sign:{comp.name}`)")
            self.key = keys.load_pem(fs.read(layout.key(comp.name)) or b"")
            self.chain = [cert, ca]


def encode(cfg: Config, comp: Component, role: str, kind: str, password: str,
           m: Material) -> bytes:
    if role == "keystore":
        assert m.key is not None
        if kind == "jks":
            return stores.jks_keystore(comp.alias, m.key, m.chain, password)
        return stores.pkcs12_keystore(comp.alias, m.key, m.chain, password, comp.encryption)
    if kind == "jks":
        return stores.jks_truststore(cfg.ca.alias, m.ca, password)
    return stores.pkcs12_truststore(cfg.ca.alias, m.ca, password, comp.encryption)


def build(cfg: Config, name: str) -> None:
    comp = cfg.components[name]
    layout = common.layout(cfg)
    m = Material(cfg, comp)
    sums: dict[str, str] = {}
    current = set(targets(layout, comp))
    # Files of the store types used before (jks -> pkcs12, pem -> jks) go, with their
    # generated passwords, so that nothing stale is left to be deployed or trusted.
    stale = [layout.store(name, r, k) for r in ("keystore", "truststore") for k in fs.STORE_EXT]
    stale += list(layout.pem_extras(name).values())
    for path in stale:
        if path not in current:
            path.unlink(missing_ok=True)
    for role, kind in (("keystore", comp.keystore), ("truststore", comp.truststore)):
        if kind in ("pem", "none"):
            layout.password_file(name, role).unlink(missing_ok=True)
    for role, kind in roles(comp):
        if kind == "pem":
            files = stores.pem_files(m.chain[0], m.ca)
            wanted = ["chain", "fullchain", "ca"] if role == "keystore" else ["ca"]
            for part in wanted:
                fs.write(layout.pem_extras(name)[part], files[part], secret=False)
            continue
        password = passwords.get(layout, comp, role, create=True)
        assert password is not None
        data = encode(cfg, comp, role, kind, password, m)
        fs.write(layout.store(name, role, kind), data, secret=role == "keystore")
        sums[layout.store(name, role, kind).name] = hashlib.sha256(data).hexdigest()
    fs.write(digest_file(layout, name), json.dumps(sums).encode(), secret=True)


def digest_file(layout: fs.Layout, name: str) -> Path:
    """SHA-256 of the stores as written: damage is found even when only a prompt knows the
    password (a digest of a whole store reveals nothing of its password)."""
    return layout.dir(name) / "stores.sha256"


def _digest_ok(layout: fs.Layout, name: str, path: Path, data: bytes) -> bool:
    sums = json.loads(fs.read(digest_file(layout, name)) or b"{}")
    return sums.get(path.name) == hashlib.sha256(data).hexdigest()


def problems(cfg: Config, comp: Component, ask: bool = True) -> list[str]:
    """What is wrong with the component's stores as they are on disk (empty: all good). With
    ask False, a store whose password only a terminal prompt knows is checked for presence only,
    so that a no-op build does not ask for the password."""
    layout = common.layout(cfg)
    m = Material(cfg, comp)
    found: list[str] = []
    for role, kind in roles(comp):
        path = layout.store(comp.name, role, kind)
        if kind == "pem":
            files = stores.pem_files(m.chain[0], m.ca)
            parts = ["chain", "fullchain", "ca"] if role == "keystore" else ["ca"]
            found += [f"{layout.pem_extras(comp.name)[p]}: not the expected PEM" for p in parts
                      if fs.read(layout.pem_extras(comp.name)[p]) != files[p]]
            continue
        password = passwords.get(layout, comp, role, create=False, ask=ask)
        data = fs.read(path)
        if password is None and data is not None and not ask and passwords.source(
                layout, comp, role) == "prompt":
            if not _digest_ok(layout, comp.name, path, data):
                found.append(f"{path}: not the store that was written")
            continue
        if password is None or data is None:
            found.append(f"{path}: missing, or its generated password is")
            continue
        try:
            got = (stores.read_jks if kind == "jks" else stores.read_pkcs12)(data, password)
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad store
            found.append(f"{path}: does not open with its password ({type(exc).__name__})")
            continue
        if role == "keystore":
            assert m.key is not None
            found += [f"{path}: {p}" for p in stores.keystore_problems(got, comp.alias, m.key,
                                                                       m.chain)]
        else:
            found += [f"{path}: {p}" for p in stores.truststore_problems(got, cfg.ca.alias, m.ca)]
    return found


def stores_ok(cfg: Config, name: str) -> bool:
    try:
        return not problems(cfg, cfg.components[name], ask=False)
    except (PkiError, ValueError):
        return False


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """package a component's keystore and truststore"""
    layout = common.layout(cfg)
    for comp in cfg.components.values():
        deps = [layout.ca_cert] + ([layout.key(comp.name), layout.cert(comp.name)]
                                   if comp.has_key else [])
        yield {
            "name": comp.name,
            "doc": "stores for {}: {}".format(comp.name, ", ".join(f"{r} {t}" for r, t in
                                                               roles(comp))),
            "actions": [common.action("stores", comp.name, build, cfg, comp.name)],
            "file_dep": deps,
            "targets": targets(layout, comp),
            "uptodate": [config_changed(settings(cfg, comp)), (stores_ok, [cfg, comp.name])],
        }
