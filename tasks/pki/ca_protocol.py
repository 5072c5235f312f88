"""The request format of the CA container's ``ca.sh serve`` (see config/ca/ca.sh): pure
encoding, so both ends of the protocol are testable without an engine."""

from __future__ import annotations

import datetime as dt

from . import names, profiles


def asn1_time(when: dt.datetime) -> str:
    """YYYYMMDDHHMMSSZ in UTC (naive times are UTC, as for cryptography)."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y%m%d%H%M%SZ")


def sign_request(csr_pem: bytes, request: profiles.IssueRequest) -> bytes:
    """One ``SIGN`` request of the ca.sh serve protocol (see config/ca/ca.sh)."""
    header = (f"SIGN {asn1_time(request.not_before)} {asn1_time(request.not_after)} "
              f"{names.openssl_subject(request.subject)}")
    csr = csr_pem.decode("ascii").strip().splitlines()
    ext = profiles.openssl_extensions(request).strip().splitlines()
    if any(line.strip() == "." for line in csr + ext) or "\n" in header:
        raise ValueError("the request holds a line '.' that would end it early")
    return ("\n".join([header, *csr, ".", *ext, "."]) + "\n").encode("ascii")
