"""The ``csr`` stage: a PKCS#10 request per component, from its key, subject and names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography import x509
from doit.tools import config_changed

from . import common
from .adapters import fs
from .config import Component, Config
from .pki import keys, names, signer


def settings(comp: Component) -> dict[str, Any]:
    """What goes into the request; profile and validity do not, so they keep the CSR."""
    return {"subject": comp.subject, "dns": list(comp.dns), "ip": list(comp.ip)}


def csr_ok(cfg: Config, name: str) -> bool:
    """The request is signed by the current key and asks for the configured subject and names."""
    comp = cfg.components[name]
    layout = common.layout(cfg)
    data, key = fs.read(layout.csr(name)), fs.read(layout.key(name))
    try:
        csr = signer.load_csr(data or b"")
        if keys.public_der(csr.public_key()) != keys.public_der(keys.load_pem(key or b"")):
            return False
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return not comp.dns and not comp.ip and csr_subject_ok(cfg, name)
    return (csr.subject == names.parse_subject(comp.subject)
            and san.get_values_for_type(x509.DNSName) == list(comp.dns)
            and [str(i) for i in san.get_values_for_type(x509.IPAddress)] == list(comp.ip))


def csr_subject_ok(cfg: Config, name: str) -> bool:
    try:
        csr = signer.load_csr(fs.read(common.layout(cfg).csr(name)) or b"")
    except ValueError:
        return False
    return csr.subject == names.parse_subject(cfg.components[name].subject)


def build(cfg: Config, name: str) -> None:
    if csr_ok(cfg, name):
        return  # doit had no record of it (state file lost): the request is right, keep it
    comp = cfg.components[name]
    layout = common.layout(cfg)
    key = keys.load_pem(fs.read(layout.key(name)) or b"")
    pem = signer.build_csr(key, names.parse_subject(comp.subject), list(comp.dns), list(comp.ip))
    fs.write(layout.csr(name), pem, secret=False)


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """make a component's certificate signing request"""
    layout = common.layout(cfg)
    for comp in common.keyed(cfg):
        yield {
            "name": comp.name,
            "doc": f"signing request for {comp.subject}",
            "actions": [common.action("csr", comp.name, build, cfg, comp.name)],
            "file_dep": [layout.key(comp.name)],
            "targets": [layout.csr(comp.name)],
            "uptodate": [config_changed(settings(comp)), (csr_ok, [cfg, comp.name])],
        }
