"""Key and trust stores as bytes: JKS (pyjks), PKCS#12 (cryptography) and PEM, and readers."""

from __future__ import annotations

from dataclasses import dataclass, field

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from . import keys

ENCRYPTIONS = ("modern", "legacy")
KDF_ROUNDS = 10000


def _pkcs12_encryption(password: str, encryption: str) -> serialization.KeySerializationEncryption:
    """modern: AES-256-CBC, PBKDF2, HMAC-SHA256; legacy: 3DES, SHA-1 MAC (Java < 8u301, macOS,
    GSKit). Never RC2-40."""
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(KDF_ROUNDS)
    if encryption == "modern":
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(
            hashes.SHA256())
    elif encryption == "legacy":
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            hashes.SHA1())
    else:
        raise ValueError(f"unknown PKCS#12 encryption {encryption!r}")
    return builder.build(password.encode())


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def jks_keystore(alias: str, key: keys.PrivateKey, chain: list[x509.Certificate],
                 password: str) -> bytes:
    """One PrivateKeyEntry, chain leaf first; the key password is the store password."""
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    entry = jks.PrivateKeyEntry.new(alias, [_der(c) for c in chain], pkcs8, "pkcs8")
    entry.encrypt(password)
    return jks.KeyStore.new("jks", [entry]).saves(password)


def jks_truststore(alias: str, ca: x509.Certificate, password: str) -> bytes:
    entry = jks.TrustedCertEntry.new(alias, _der(ca))
    return jks.KeyStore.new("jks", [entry]).saves(password)


def pkcs12_keystore(alias: str, key: keys.PrivateKey, chain: list[x509.Certificate],
                    password: str, encryption: str) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        alias.encode(), key, chain[0], chain[1:], _pkcs12_encryption(password, encryption))


def pkcs12_truststore(alias: str, ca: x509.Certificate, password: str, encryption: str) -> bytes:
    """A Java-visible truststore: the certificate bag carries Java's trusted-key-usage attribute
    (a plain certificate bag lists as 0 entries in keytool)."""
    return pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca, alias.encode())], _pkcs12_encryption(password, encryption))


@dataclass
class StoreContents:
    """What a store holds: key entries (alias → chain) and trusted certificates (alias → cert)."""

    key_entries: dict[str, tuple[keys.PrivateKey, list[x509.Certificate]]] = field(
        default_factory=dict)
    trusted: dict[str, x509.Certificate] = field(default_factory=dict)


def read_jks(data: bytes, password: str) -> StoreContents:
    """Open a JKS store; pyjks checks the store's integrity hash with the password."""
    store = jks.KeyStore.loads(data, password)
    out = StoreContents()
    for alias, pk in store.private_keys.items():
        if not pk.is_decrypted():
            pk.decrypt(password)
        key = serialization.load_der_private_key(pk.pkey_pkcs8, None,
                                                 unsafe_skip_rsa_key_validation=True)
        chain = [x509.load_der_x509_certificate(c[1]) for c in pk.cert_chain]
        out.key_entries[alias] = (key, chain)  # type: ignore[assignment]
    for alias, tc in store.certs.items():
        out.trusted[alias] = x509.load_der_x509_certificate(tc.cert)
    if store.secret_keys:
        out.key_entries.update({a: (None, []) for a in store.secret_keys})  # type: ignore[misc]
    return out


def read_pkcs12(data: bytes, password: str) -> StoreContents:
    p12 = pkcs12.load_pkcs12(data, password.encode())
    out = StoreContents()
    if p12.key is not None and p12.cert is not None:
        alias = (p12.cert.friendly_name or b"").decode()
        out.key_entries[alias] = (p12.key, [p12.cert.certificate]  # type: ignore[assignment]
                                  + [c.certificate for c in p12.additional_certs])
    else:
        for c in p12.additional_certs:
            out.trusted[(c.friendly_name or b"").decode()] = c.certificate
    return out


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return _der(a) == _der(b)


def keystore_problems(got: StoreContents, alias: str, key: keys.PrivateKey,
                      chain: list[x509.Certificate]) -> list[str]:
    """Exactly one PrivateKeyEntry named alias, holding key, chain leaf then CA; nothing else."""
    problems = []
    if list(got.key_entries) != [alias] or got.trusted:
        problems.append(f"holds keys {sorted(got.key_entries)} and trusted certificates "
                        f"{sorted(got.trusted)}, expected exactly one key entry {alias!r}")
    entry = got.key_entries.get(alias)
    if entry is not None:
        stored_key, stored_chain = entry
        if stored_key is None or keys.public_der(stored_key) != keys.public_der(key):
            problems.append(f"entry {alias!r} holds another private key")
        if len(stored_chain) != len(chain) or not all(map(_same, stored_chain, chain)):
            problems.append(f"entry {alias!r} does not hold the chain leaf, CA")
    return problems


def truststore_problems(got: StoreContents, alias: str, ca: x509.Certificate) -> list[str]:
    """Exactly one trustedCertEntry, the CA, and no key entry."""
    if got.key_entries or list(got.trusted) != [alias] or not _same(got.trusted[alias], ca):
        return [f"holds keys {sorted(got.key_entries)} and trusted certificates "
                f"{sorted(got.trusted)}, expected only the CA as {alias!r}"]
    return []


def pem_files(cert: x509.Certificate, ca: x509.Certificate) -> dict[str, bytes]:
    """The PEM keystore's public files: chain (the CA), full chain (leaf then CA), CA."""
    return {"chain": pem(ca), "fullchain": pem(cert) + pem(ca), "ca": pem(ca)}
