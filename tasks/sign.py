"""The ``sign`` stage: the CA signs each CSR with the component's profile; SANs come from the
config, never from the CSR."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from doit.tools import config_changed

from . import ca, common
from .adapters import fs
from .config import Component, Config
from .errors import CaError
from .pki import keys, names, profiles, signer

_signers: dict[str, signer.Signer] = {}


def settings(comp: Component) -> dict[str, Any]:
    assert comp.profile is not None
    return {"subject": comp.subject, "dns": list(comp.dns), "ip": list(comp.ip),
            "profile": [comp.profile.name, list(comp.profile.key_usage),
                        list(comp.profile.extended_key_usage)],
            "validity_days": comp.validity_days}


def request_for(comp: Component, ca_cert: Any, now: dt.datetime) -> profiles.IssueRequest:
    assert comp.profile is not None and comp.key is not None
    subject = names.parse_subject(comp.subject)
    start, end = profiles.validity(now, comp.validity_days, ca_cert.not_valid_after_utc)
    return profiles.IssueRequest(
        subject=subject, dns=profiles.effective_dns(comp.profile, subject, list(comp.dns)),
        ip=comp.ip, profile=comp.profile, not_before=start, not_after=end,
        rsa_key=comp.key.is_rsa)


def needs_renewal(cert: Any, ca_cert: Any, renew_before_days: int, now: dt.datetime) -> bool:
    """Within renew_before_days of expiry, unless re-signing could not extend it (CA's end)."""
    end = cert.not_valid_after_utc
    return end - now < dt.timedelta(days=renew_before_days) and end < ca_cert.not_valid_after_utc


def cert_ok(cfg: Config, name: str) -> bool:
    """Readable, issued by the current CA, for the current key, with the configured content,
    and not due for renewal. Checked on the files alone, so a lost state file re-signs nothing."""
    layout = common.layout(cfg)
    comp = cfg.components[name]
    cert, ca_cert = common.load_cert(layout.cert(name)), common.load_cert(layout.ca_cert)
    if cert is None or ca_cert is None or not common.issued_by(cert, ca_cert):
        return False
    try:
        key = keys.load_pem(fs.read(layout.key(name)) or b"")
    except ValueError:
        return False
    if keys.public_der(key) != keys.public_der(cert.public_key()):
        return False
    now = common.now()
    if profiles.differences(cert, request_for(comp, ca_cert, now), comp.validity_days,
                            ca_cert.not_valid_after_utc):
        return False
    return not needs_renewal(cert, ca_cert, cfg.renew_before_days, now)


def get_signer(cfg: Config) -> signer.Signer:
    """One signer per process: the local CA key, or one exec session into the CA container."""
    key = str(cfg.output)
    if key not in _signers:
        layout = common.layout(cfg)
        if ca.backend(cfg) == "docker":
            from .adapters import docker, signing
            _signers[key] = signing.DockerSigner(docker.connect(), cfg.ca.container)
        else:
            _signers[key] = ca.load_local_signer(layout)
    return _signers[key]


def sign(cfg: Config, name: str) -> None:
    if cert_ok(cfg, name):
        return  # doit had no record of it (state file lost): the certificate is right, keep it
    layout = common.layout(cfg)
    comp = cfg.components[name]
    ca_cert = common.load_cert(layout.ca_cert)
    if ca_cert is None:
        raise CaError(f"{layout.ca_cert} is missing or unreadable (run `doit ca`)")
    csr = fs.read(layout.csr(name)) or b""
    pem = get_signer(cfg).sign(csr, request_for(comp, ca_cert, common.now()))
    check_issued(cfg, name, pem, ca_cert)
    fs.write(layout.cert(name), pem, secret=False)


def check_issued(cfg: Config, name: str, pem: bytes, ca_cert: Any) -> None:
    """Whatever signed it, keep a certificate only if the CA in output/ca issued it for the
    component's key: a CA replaced behind our back never reaches a store."""
    layout = common.layout(cfg)
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CaError("the CA answered with something that is not a certificate") from None
    if not common.issued_by(cert, ca_cert):
        raise CaError(f"the certificate that came back was not issued by {layout.ca_cert}; "
                      "the CA behind the signer is another one (restore the CA volume, or run "
                      "`doit new_ca` to make a new CA on purpose)")
    key = keys.load_pem(fs.read(layout.key(name)) or b"")
    if keys.public_der(key) != keys.public_der(cert.public_key()):
        raise CaError("the certificate that came back is for another key")


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """have the CA sign a component's certificate"""
    layout = common.layout(cfg)
    for comp in common.keyed(cfg):
        assert comp.profile is not None
        yield {
            "name": comp.name,
            "doc": f"certificate for {comp.name}: profile {comp.profile.name}, "
                   f"{comp.validity_days} days",
            "actions": [common.action("sign", comp.name, sign, cfg, comp.name)],
            "file_dep": [layout.csr(comp.name), layout.ca_cert],
            "task_dep": ["ca"],
            "targets": [layout.cert(comp.name)],
            "uptodate": [config_changed(settings(comp)), (cert_ok, [cfg, comp.name])],
        }
