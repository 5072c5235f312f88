"""Signing profiles: named usages resolved to X.509 extensions, for cryptography and openssl."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

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


def _ext(cert: x509.Certificate, kind: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def differences(cert: x509.Certificate, req: IssueRequest, days: int,
                ca_not_after: dt.datetime) -> list[str]:
    """How a certificate differs from what ``req`` would issue (validity by its length), so an
    existing certificate is kept exactly when re-signing would give the same content."""
    found = []
    if cert.subject != req.subject:
        found.append(f"subject is {cert.subject.rfc4514_string()}, configured "
                     f"{req.subject.rfc4514_string()}")
    san = _ext(cert, x509.SubjectAlternativeName)
    dns = san.value.get_values_for_type(x509.DNSName) if san else []
    ips = [str(i) for i in san.value.get_values_for_type(x509.IPAddress)] if san else []
    if dns != list(req.dns) or ips != list(req.ip):
        found.append(f"SANs are DNS {dns} IP {ips}, configured DNS {list(req.dns)} "
                     f"IP {list(req.ip)}")
    want = {(type(e).__name__, e, critical) for e, critical in extensions(req)
            if not isinstance(e, x509.SubjectAlternativeName)}
    have = {(type(e.value).__name__, e.value, e.critical) for e in cert.extensions
            if isinstance(e.value, x509.BasicConstraints | x509.KeyUsage | x509.ExtendedKeyUsage)}
    if want != have:
        found.append(f"usages are {sorted(str(h[1]) for h in have)}, profile "
                     f"{req.profile.name} gives {sorted(str(w[1]) for w in want)}")
    length = cert.not_valid_after_utc - cert.not_valid_before_utc
    if (length != dt.timedelta(days=days, minutes=5)
            and cert.not_valid_after_utc != ca_not_after):
        found.append(f"valid for {length}, configured {days} days")
    return found
