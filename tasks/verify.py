"""The ``verify`` stage: re-read everything a component got and check it as a consumer would."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.x509 import verification as v

from . import common, sign, stores
from .adapters import fs
from .config import Component, Config
from .errors import PkiError
from .pki import keys, profiles


def chain_problems(comp: Component, cert: x509.Certificate, ca: x509.Certificate) -> list[str]:
    """RFC 5280 path validation with cryptography's verifier, as a server or client peer."""
    assert comp.profile is not None
    builder = v.PolicyBuilder().store(v.Store([ca]))
    dns = profiles.effective_dns(comp.profile, cert.subject, list(comp.dns))
    # Strict verifiers (browsers, Java's SNI) refuse "_" in host names; check a name they take.
    strict: list[v.DNSName | v.IPAddress] = [v.DNSName(d) for d in dns if "_" not in d]
    strict += [v.IPAddress(ipaddress.ip_address(i)) for i in comp.ip]
    try:
        if comp.profile.is_server and strict:
            builder.build_server_verifier(strict[0]).verify(cert, [])
        # cryptography's client policy wants a SAN (RFC 5280 profile); a user's certificate
        # may carry none, and then only the signature check below applies.
        if "client_auth" in comp.profile.extended_key_usage and (comp.dns or comp.ip):
            builder.build_client_verifier().verify(cert, [])
        if not common.issued_by(cert, ca):
            return ["the certificate is not signed by the CA"]
    except v.VerificationError as exc:
        return [f"chain does not verify: {exc}"]
    return []


def cert_problems(comp: Component, cert: x509.Certificate, key: keys.PrivateKey,
                  ca: x509.Certificate) -> list[str]:
    """Key matches; subject, SANs, usages and validity are exactly as configured."""
    assert comp.profile is not None
    found = []
    if keys.public_der(key) != keys.public_der(cert.public_key()):
        found.append("the private key does not match the certificate")
    found += profiles.differences(cert, sign.request_for(comp, ca, common.now()),
                                  comp.validity_days, ca.not_valid_after_utc)
    return found


def check(cfg: Config, name: str) -> None:
    comp = cfg.components[name]
    layout = common.layout(cfg)
    layout.verified(name).unlink(missing_ok=True)  # no stale pass for deploy to trust
    ca = common.load_cert(layout.ca_cert)
    if ca is None:
        raise PkiError(f"{layout.ca_cert} is missing or unreadable")
    found, summary = [], f"verify {name}: ok"
    if comp.has_key:
        cert = common.load_cert(layout.cert(name))
        if cert is None:
            raise PkiError(f"{layout.cert(name)} is missing or unreadable")
        key = keys.load_pem(fs.read(layout.key(name)) or b"", validate=True)
        found += chain_problems(comp, cert, ca) + cert_problems(comp, cert, key, ca)
        days = (cert.not_valid_after_utc - common.now()).days
        summary += f", serial {cert.serial_number:x}, expires in {days} days"
    found += stores.problems(cfg, comp)
    if found:
        raise PkiError("; ".join(found))
    summary += ", stores: " + ", ".join(f"{r} {t}" for r, t in stores.roles(comp))
    print(summary)
    fs.write(layout.verified(name), (summary + "\n").encode(), secret=False)


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """check a component's chain, key, names, usages and stores as a consumer would"""
    layout = common.layout(cfg)
    for comp in cfg.components.values():
        deps = [layout.ca_cert] + stores.targets(layout, comp)
        if comp.has_key:
            deps += [layout.key(comp.name), layout.cert(comp.name)]
        yield {
            "name": comp.name,
            "doc": f"verify {comp.name}'s certificate and stores",
            "actions": [common.action("verify", comp.name, check, cfg, comp.name)],
            "file_dep": sorted(set(deps)),
            "targets": [layout.verified(comp.name)],
            "verbosity": 2,
        }
