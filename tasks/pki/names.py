"""Subjects and subject alternative names, validated before they reach a certificate."""

from __future__ import annotations

import ipaddress
import re

from cryptography import x509

# RFC 1123 labels, plus a leading "*." wildcard, plus "_" because Docker container names (the
# example's admin_client) use it and OpenSSL and Java accept it; nothing that could escape an
# openssl config.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
# Characters allowed in a subject attribute value: enough for real names, safe in openssl -subj.
_VALUE = re.compile(r"^[A-Za-z0-9 ._@'()-]+$")


def check_dns(name: str) -> str:
    try:
        ipaddress.ip_address(name)
        raise ValueError(f"{name!r} is an IP address (list it under ip, as an iPAddress SAN)")
    except ValueError as exc:
        if "is an IP address" in str(exc):
            raise
    if len(name) > 253 or not _DNS.match(name):
        raise ValueError(f"{name!r} is not a valid DNS name")
    return name.lower()


def check_ip(text: str) -> str:
    if "%" in text:
        raise ValueError(f"{text!r} has a zone id, which a certificate cannot carry")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


def parse_subject(text: str) -> x509.Name:
    """An RFC 4514 string, most specific first (``CN=host, C=GB``), as a Name."""
    # Operators write "CN=host, C=GB"; values cannot hold commas (see _VALUE), so strip freely.
    try:
        name = x509.Name.from_rfc4514_string(",".join(p.strip() for p in text.split(",")))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an RFC 4514 name ({exc})") from None
    if not name.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        raise ValueError(f"{text!r} has no CN")
    for attr in name:
        value = attr.value if isinstance(attr.value, str) else ""
        if not _VALUE.match(value):
            raise ValueError(f"{text!r}: value {value!r} has characters outside "
                             "[A-Za-z0-9 ._@'()-]")
        if attr.oid == x509.NameOID.COUNTRY_NAME and len(value) != 2:
            raise ValueError(f"{text!r}: C must be a two-letter country code")
    return name


def common_name(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def openssl_subject(name: x509.Name) -> str:
    """The ``-subj`` form, in encoding order: ``/C=GB/CN=host``."""
    parts = []
    for rdn in name.rdns:
        parts.append("+".join(a.rfc4514_string() for a in rdn))
    return "/" + "/".join(parts)


def san_list(dns: list[str], ips: list[str]) -> list[x509.GeneralName]:
    """Names as dNSName and addresses as iPAddress, in config order."""
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    return names
