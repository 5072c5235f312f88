"""Pure PKI functions with real cryptography: extensions with criticality, serials, validity."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tasks.pki import keys, names, profiles, signer, stores

NOW = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.UTC)
SERVER_CLIENT = profiles.Profile("server_client", ("digital_signature", "key_encipherment"),
                                 ("server_auth", "client_auth"))
CLIENT = profiles.Profile("client", ("digital_signature", "key_encipherment"), ("client_auth",))


@pytest.fixture(scope="module")
def ca() -> signer.LocalSigner:
    key = keys.generate(keys.parse_spec("rsa:2048"))
    subject = names.parse_subject("CN=i2CA, OU=i2, O=i2Group, L=Cambridge, ST=Cambridgeshire, C=GB")
    return signer.LocalSigner(key, signer.create_ca(subject, key, 1095, NOW))


def issue(ca: signer.LocalSigner, spec: str = "rsa:2048", profile: profiles.Profile = SERVER_CLIENT,
          dns: tuple[str, ...] = ("liberty.eianet", "liberty"), ip: tuple[str, ...] = (),
          days: int = 365, subject: str = "CN=liberty.eianet, C=GB") -> x509.Certificate:
    key = keys.generate(keys.parse_spec(spec))
    name = names.parse_subject(subject)
    start, end = profiles.validity(NOW, days, ca.ca_cert.not_valid_after_utc)
    req = profiles.IssueRequest(name, profiles.effective_dns(profile, name, list(dns)), ip,
                                profile, start, end, keys.parse_spec(spec).is_rsa)
    # The CSR asks for other names: the certificate must carry the configured ones.
    csr = signer.build_csr(key, name, ["evil.example"], ["10.9.9.9"])
    return x509.load_pem_x509_certificate(ca.sign(csr, req))


def test_key_specs() -> None:
    assert str(keys.parse_spec("ec:p256")) == "ec:p256"
    with pytest.raises(ValueError, match="rsa:2048"):
        keys.parse_spec("rsa:1024")
    key = keys.generate(keys.parse_spec("ec:p384"))
    assert keys.spec_of(key) == keys.KeySpec("ec", "p384")
    assert keys.spec_of(keys.load_pem(keys.to_pem(key))) == keys.KeySpec("ec", "p384")
    assert keys.to_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8


def test_ca_extensions(ca: signer.LocalSigner) -> None:
    cert = ca.ca_cert
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.subject.rfc4514_string() == (
        "CN=i2CA,OU=i2,O=i2Group,L=Cambridge,ST=Cambridgeshire,C=GB")


def test_leaf_extensions_and_criticality(ca: signer.LocalSigner) -> None:
    cert = issue(ca, ip=("192.168.1.10",))
    ext = cert.extensions
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["liberty.eianet", "liberty"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["192.168.1.10"]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cert.verify_directly_issued_by(ca.ca_cert)


def test_server_cn_is_a_san_and_client_user_name_is_not(ca: signer.LocalSigner) -> None:
    cert = issue(ca, profile=SERVER_CLIENT, dns=("solr",), subject="CN=solr.eianet, C=GB")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["solr.eianet", "solr"]
    user = issue(ca, profile=CLIENT, dns=("i2demo",), subject="CN=Jenny")
    san = user.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["i2demo"]
    eku = user.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ec_key_has_no_key_encipherment(ca: signer.LocalSigner) -> None:
    ku = issue(ca, spec="ec:p256").extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment  # RFC 8813


def test_serials_random_and_long(ca: signer.LocalSigner) -> None:
    serials = {issue(ca).serial_number for _ in range(3)}
    assert len(serials) == 3
    assert all(s > 0 and s.bit_length() >= 64 for s in serials)


def test_validity_skew_and_ca_cap(ca: signer.LocalSigner) -> None:
    cert = issue(ca, days=365)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=365)
    capped = issue(ca, days=5000)
    assert capped.not_valid_after_utc == ca.ca_cert.not_valid_after_utc


def test_openssl_rendering_matches_local_extensions() -> None:
    name = names.parse_subject("CN=db2.eianet, C=GB")
    req = profiles.IssueRequest(name, ("db2.eianet", "db2"), ("10.0.0.2",), SERVER_CLIENT,
                                NOW, NOW, rsa_key=False)
    text = profiles.openssl_extensions(req)
    assert "keyUsage = critical,digitalSignature\n" in text
    assert "extendedKeyUsage = serverAuth,clientAuth" in text
    assert "DNS.2 = db2" in text and "IP.1 = 10.0.0.2" in text
    assert "authorityKeyIdentifier = keyid:always" in text


@pytest.mark.parametrize("bad", ["bad name", "a..b", "-x.com", "x;y", "a$(reboot)", "1.2.3.4"])
def test_dns_names_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        names.check_dns(bad)


@pytest.mark.parametrize("bad", ["O=NoCN", "CN=a/b", "CN=x, C=GBR", "nonsense"])
def test_bad_subjects(bad: str) -> None:
    with pytest.raises(ValueError):
        names.parse_subject(bad)


def test_openssl_subject_is_in_encoding_order() -> None:
    name = names.parse_subject("CN=i2CA, OU=i2, C=GB")
    assert names.openssl_subject(name) == "/C=GB/OU=i2/CN=i2CA"


def test_store_round_trips(ca: signer.LocalSigner) -> None:
    leaf = issue(ca)
    key = keys.generate(keys.parse_spec("rsa:2048"))
    chain = [leaf, ca.ca_cert]
    ks = stores.read_jks(stores.jks_keystore("liberty", key, chain, "secret1"), "secret1")
    assert stores.keystore_problems(ks, "liberty", key, chain) == []
    assert stores.keystore_problems(ks, "other", key, chain)
    ts = stores.read_pkcs12(stores.pkcs12_truststore("ca", ca.ca_cert, "secret1", "modern"),
                            "secret1")
    assert stores.truststore_problems(ts, "ca", ca.ca_cert) == []
    with pytest.raises(ValueError):
        stores.read_pkcs12(stores.pkcs12_keystore("x", key, chain, "secret1", "legacy"), "wrong1")
