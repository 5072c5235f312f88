"""Signing profiles: named usages resolved to X.509 extensions, for cryptography and openssl."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import names

KEY_USAGES = ("digital_signature", "key_encipherment", "key_agreement", "non_repudiation")
EXTENDED_USAGES = {
    "server_auth": (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth"),
    "client_auth": (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth"),
    "code_signing": (ExtendedKeyUsageOID.CODE_SIGNING, "codeSigning"),
    "email_protection": (ExtendedKeyUsageOID.EMAIL_PROTECTION, "emailProtection"),
}
_OPENSSL_KU = {
    "digital_signature": "digitalSignature",
    "key_encipherment": "keyEncipherment",
    "key_agreement": "keyAgreement",
    "non_repudiation": "nonRepudiation",
}

BUILTIN_PROFILES: dict[str, dict[str, list[str]]] = {
    "server": {"key_usage": ["digital_signature", "key_encipherment"],
               "extended_key_usage": ["server_auth"]},
    "client": {"key_usage": ["digital_signature", "key_encipherment"],
               "extended_key_usage": ["client_auth"]},
    "server_client": {"key_usage": ["digital_signature", "key_encipherment"],
                      "extended_key_usage": ["server_auth", "client_auth"]},
}


@dataclass(frozen=True)
class Profile:
    """What a leaf certificate may be used for."""

    name: str
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]

    @property
    def is_server(self) -> bool:
        return "server_auth" in self.extended_key_usage


@dataclass(frozen=True)
class IssueRequest:
    """Everything a signer needs besides the CSR; both CA backends take the same request."""

    subject: x509.Name
    dns: tuple[str, ...]
    ip: tuple[str, ...]
    profile: Profile
    not_before: dt.datetime
    not_after: dt.datetime
    rsa_key: bool  # keyEncipherment only applies to RSA keys (RFC 8813 for EC)


def effective_dns(profile: Profile, subject: x509.Name, dns: list[str]) -> tuple[str, ...]:
    """Config DNS names; for server profiles the CN is also a DNS SAN (RFC 6125 ignores CN)."""
    out = list(dns)
    cn = names.common_name(subject).lower()
    if profile.is_server and cn not in out:
        try:
            names.check_dns(cn)
            out.insert(0, cn)
        except ValueError:
            pass  # a CN that is not a host name (a user's name) is not a SAN
    return tuple(out)


def validity(now: dt.datetime, days: int,
             ca_not_after: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """notBefore five minutes back for clock skew; notAfter never after the CA's."""
    start = now.replace(microsecond=0) - dt.timedelta(minutes=5)
    end = min(now.replace(microsecond=0) + dt.timedelta(days=days), ca_not_after)
    return start, end


def key_usages(req: IssueRequest) -> list[str]:
    return [u for u in req.profile.key_usage if req.rsa_key or u != "key_encipherment"]


def extensions(req: IssueRequest) -> list[tuple[x509.ExtensionType, bool]]:
    """Leaf extensions with their criticality, for the local signer (same as openssl_extensions)."""
    ku = set(key_usages(req))
    out: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(
            digital_signature="digital_signature" in ku,
            content_commitment="non_repudiation" in ku,
            key_encipherment="key_encipherment" in ku,
            data_encipherment=False,
            key_agreement="key_agreement" in ku,
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        ), True),
    ]
    if req.profile.extended_key_usage:
        out.append((x509.ExtendedKeyUsage(
            [EXTENDED_USAGES[u][0] for u in req.profile.extended_key_usage]), False))
    sans = names.san_list(list(req.dns), list(req.ip))
    if sans:
        out.append((x509.SubjectAlternativeName(sans), False))
    return out


def openssl_extensions(req: IssueRequest) -> str:
    """The same extensions as an openssl extension file (section ``leaf``) for the CA container."""
    lines = [
        "[leaf]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical," + ",".join(_OPENSSL_KU[u] for u in key_usages(req)),
    ]
    if req.profile.extended_key_usage:
        lines.append("extendedKeyUsage = " + ",".join(
            EXTENDED_USAGES[u][1] for u in req.profile.extended_key_usage))
    if req.dns or req.ip:
        lines.append("subjectAltName = @alt")
    lines += ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid:always"]
    if req.dns or req.ip:
        lines.append("[alt]")
        lines += [f"DNS.{i} = {d}" for i, d in enumerate(req.dns, 1)]
        lines += [f"IP.{i} = {a}" for i, a in enumerate(req.ip, 1)]
    return "\n".join(lines) + "\n"
