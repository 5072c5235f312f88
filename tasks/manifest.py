"""The ``manifest`` stage: output/manifest.json (no secrets) and the generated passwords'
credentials.properties (0600)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from doit.tools import config_changed

from . import common, passwords, stores
from .adapters import fs
from .config import Component, Config


def _store(layout: fs.Layout, comp: Component, role: str, kind: str,
           ca_alias: str) -> dict[str, Any]:
    """One store: the truststore's alias is the CA's, a PEM keystore has none."""
    entry: dict[str, Any] = {
        "role": role, "type": kind, "path": layout.rel(layout.store(comp.name, role, kind)),
        "alias": ca_alias if role == "truststore" else (None if kind == "pem" else comp.alias),
        "password_source": None if kind == "pem" else passwords.source(layout, comp, role)}
    if kind == "pem" and role == "keystore":
        entry.update({k: layout.rel(p) for k, p in layout.pem_extras(comp.name).items()})
        entry["certificate"] = layout.rel(layout.cert(comp.name))
    return entry


def component(cfg: Config, comp: Component) -> dict[str, Any]:
    layout = common.layout(cfg)
    cert = common.load_cert(layout.cert(comp.name)) if comp.has_key else None
    return {
        "certificate": layout.rel(layout.cert(comp.name)) if cert else None,
        "private_key": layout.rel(layout.key(comp.name)) if cert else None,
        "serial": f"{cert.serial_number:x}" if cert else None,
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex() if cert else None,
        "not_after": cert.not_valid_after_utc.isoformat() if cert else None,
        "subject": comp.subject if comp.has_key else None,
        "profile": comp.profile.name if comp.profile else None,
        "dns": cert_dns(cert) if cert else [],
        "ip": list(comp.ip) if cert else [],
        "stores": [_store(layout, comp, r, t, cfg.ca.alias) for r, t in stores.roles(comp)],
    }


def cert_dns(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def write(cfg: Config) -> None:
    layout = common.layout(cfg)
    ca = common.load_cert(layout.ca_cert)
    doc = {
        "ca": {"certificate": layout.rel(layout.ca_cert),
               "subject": ca.subject.rfc4514_string() if ca else None,
               "backend": fs.read_word(layout.ca_backend) or None,
               "fingerprint_sha256": ca.fingerprint(hashes.SHA256()).hex() if ca else None,
               "not_after": ca.not_valid_after_utc.isoformat() if ca else None},
        "components": {c.name: component(cfg, c) for c in cfg.components.values()},
    }
    fs.write(layout.manifest, (json.dumps(doc, indent=2) + "\n").encode(), secret=False)
    generated = [(c.name, r) for c in cfg.components.values() for r, t in stores.roles(c)
                 if t != "pem" and passwords.source(layout, c, r).startswith("file:secrets/")]
    fs.write(layout.credentials, passwords.credentials(layout, generated), secret=True)


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    layout = common.layout(cfg)
    deps: list[Path] = [layout.ca_cert]
    for comp in cfg.components.values():
        deps += stores.targets(layout, comp)
        if comp.has_key:
            deps.append(layout.cert(comp.name))
    listing = {c.name: [c.subject, list(c.ip), stores.settings(cfg, c)]
               for c in cfg.components.values()}
    yield {
        "basename": "manifest",
        "doc": "write output/manifest.json (paths, serials, fingerprints; no secrets)",
        "actions": [common.action("manifest", None, write, cfg)],
        "file_dep": sorted(set(deps)),
        "targets": [layout.manifest, layout.credentials],
        "uptodate": [config_changed({"components": listing, "ca_alias": cfg.ca.alias})],
    }
