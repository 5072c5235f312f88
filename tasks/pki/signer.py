"""The CA: create one, build CSRs, and sign them with the local key (the reference signer)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from . import keys, names, profiles


class Signer(Protocol):
    """Both CA backends: a CSR and a request in, a PEM certificate out."""

    def sign(self, csr_pem: bytes, request: profiles.IssueRequest) -> bytes: ...


def create_ca(subject: x509.Name, key: keys.PrivateKey, days: int,
              now: dt.datetime) -> x509.Certificate:
    """Self-signed CA: basicConstraints critical CA:TRUE pathlen 0, keyUsage keyCertSign+cRLSign."""
    start = now.replace(microsecond=0) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now.replace(microsecond=0) + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_csr(key: keys.PrivateKey, subject: x509.Name, dns: list[str], ips: list[str]) -> bytes:
    """A PKCS#10 request; the CA takes SANs from the config, the CSR only carries the key."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    sans = names.san_list(dns, ips)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    csr = x509.load_pem_x509_csr(data)
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not verify")
    return csr


class LocalSigner:
    """Signs with a CA key held by this process."""

    def __init__(self, ca_key: keys.PrivateKey, ca_cert: x509.Certificate) -> None:
        self.ca_key = ca_key
        self.ca_cert = ca_cert

    def sign(self, csr_pem: bytes, request: profiles.IssueRequest) -> bytes:
        csr = load_csr(csr_pem)
        ca_ski = self.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())  # 159 random bits (CA/B BR: >= 64)
            .not_valid_before(request.not_before)
            .not_valid_after(request.not_after)
        )
        for ext, critical in profiles.extensions(request):
            builder = builder.add_extension(ext, critical=critical)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM)
