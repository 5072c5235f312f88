"""The docker CA backend on a real engine: image, container, CA volume, and signing that gives the
same certificates as the local signer."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from tasks.adapters import docker as adapter
from tasks.adapters import signing
from tasks.config import CaConfig
from tasks.errors import CaError, EngineError
from tasks.pki import keys, names, profiles, signer
from tests import dockerlib

pytestmark = pytest.mark.docker

CONTEXT = Path(__file__).resolve().parents[2] / "config" / "ca"
SUBJECT = "CN=i2CA, OU=i2, O=i2Group, L=Cambridge, ST=Cambridgeshire, C=GB"
SERVER_CLIENT = profiles.Profile("server_client", ("digital_signature", "key_encipherment"),
                                 ("server_auth", "client_auth"))
CLIENT = profiles.Profile("client", ("digital_signature", "key_encipherment"), ("client_auth",))


def ca_config(base_image: str) -> CaConfig:
    """A CA with a container and volume name no other run uses (RSA 2048: fast to create)."""
    return CaConfig(subject=SUBJECT, key=keys.parse_spec("rsa:2048"), validity_days=1095,
                    alias="ca", image="unused", base_image=base_image,
                    container=dockerlib.unique("pki-test-ca"),
                    volume=dockerlib.unique("pki-test-vol"))


def ca_exec(client: Any, ca: CaConfig, *cmd: str) -> str:
    result = client.containers.get(ca.container).exec_run(list(cmd))
    assert result.exit_code == 0, result.output
    return str(result.output.decode())


@pytest.fixture(scope="module")
def ca_image(docker_client: Any, base_image: str) -> Iterator[str]:
    tag = dockerlib.unique("pki-test-ca-image") + ":latest"
    yield adapter.build_ca_image(docker_client, CONTEXT, tag, base_image)
    dockerlib.remove_image(docker_client, tag)


@pytest.fixture(scope="module")
def docker_ca(docker_client: Any, ca_image: str,
              base_image: str) -> Iterator[tuple[CaConfig, bytes]]:
    ca = ca_config(base_image)
    try:
        yield ca, adapter.ensure_ca(docker_client, ca, ca_image, allow_create=True)
    finally:
        adapter.remove_ca(docker_client, ca)


@pytest.fixture(scope="module")
def docker_signer(docker_client: Any, docker_ca: tuple[CaConfig, bytes]) -> Iterator[Any]:
    with signing.DockerSigner(docker_client, docker_ca[0].container) as ca:
        yield ca


def test_image_builds_from_the_scratch_base(docker_client: Any, ca_image: str) -> None:
    image = docker_client.images.get(ca_image)
    assert image.id == ca_image and image.labels.get(adapter.LABEL) == "ca-image"
    assert "/ca" in image.attrs["Config"]["Volumes"]


def test_missing_base_image_is_one_line(docker_client: Any) -> None:
    missing = dockerlib.unique("pki-test-missing") + ":none"
    with pytest.raises(EngineError) as err:
        adapter.build_ca_image(docker_client, CONTEXT, dockerlib.unique("pki-test-x"), missing)
    assert "\n" not in str(err.value)
    assert missing in str(err.value) and "docker load -i" in str(err.value)


def test_build_failure_is_one_line_with_the_last_log_line(docker_client: Any, base_image: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo the-last-words && exit 3\n")
    with pytest.raises(EngineError) as err:
        adapter.build_ca_image(docker_client, tmp_path, dockerlib.unique("pki-test-x"), base_image)
    assert "\n" not in str(err.value) and "the-last-words" in str(err.value)


def test_ca_is_created_inside_and_only_its_certificate_comes_out(
        docker_client: Any, ca_image: str, docker_ca: tuple[CaConfig, bytes]) -> None:
    ca, pem = docker_ca
    assert b"PRIVATE KEY" not in pem and pem.count(b"-----BEGIN") == 1
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.public_bytes() == names.parse_subject(SUBJECT).public_bytes()
    assert cert.issuer == cert.subject
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 1095
    assert ca_exec(docker_client, ca, "stat", "-c", "%a", "/ca/ca.key").strip() == "600"
    assert adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False) == pem


def test_container_has_no_network_and_the_volume(docker_client: Any, ca_image: str,
                                                 docker_ca: tuple[CaConfig, bytes]) -> None:
    ca, _ = docker_ca
    attrs = docker_client.api.inspect_container(ca.container)
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert attrs["Config"]["Labels"][adapter.LABEL] == "ca"
    assert {(m["Name"], m["Destination"]) for m in attrs["Mounts"]} == {(ca.volume, "/ca")}
    assert adapter.ca_running(docker_client, ca, ca_image)
    assert not adapter.ca_running(docker_client, ca, "sha256:" + "0" * 64)


@pytest.mark.parametrize(("profile", "leaf", "subject", "dns", "ip", "csr_subject"), [
    (SERVER_CLIENT, "rsa:2048", "CN=solr.eianet, O=i2Group, C=GB", ("solr.eianet", "solr"),
     ("10.0.0.5", "fd00::5"), None),
    # The subject comes from the request (the config), never from the CSR.
    (CLIENT, "ec:p256", "CN=Jenny, OU=Analysts, O=i2Group, C=GB", (), (), "CN=old name"),
])
def test_docker_certificate_equals_local_certificate(
        docker_ca: tuple[CaConfig, bytes], docker_signer: Any, tmp_path: Path,
        profile: profiles.Profile, leaf: str, subject: str, dns: tuple[str, ...],
        ip: tuple[str, ...], csr_subject: str | None) -> None:
    local_key = keys.generate(keys.parse_spec("rsa:2048"))
    local_ca = signer.create_ca(names.parse_subject(SUBJECT), local_key, 1095,
                                dt.datetime.now(dt.UTC))
    docker_ca_cert = x509.load_pem_x509_certificate(docker_ca[1])
    key = keys.generate(keys.parse_spec(leaf))
    request = dockerlib.leaf_request(subject, profile, dns, ip, rsa_key=leaf.startswith("rsa"))
    csr_name = names.parse_subject(csr_subject) if csr_subject else request.subject
    csr = signer.build_csr(key, csr_name, list(dns), list(ip))
    got = x509.load_pem_x509_certificate(docker_signer.sign(csr, request))
    local = signer.LocalSigner(local_key, local_ca)
    want = x509.load_pem_x509_certificate(local.sign(csr, request))
    for cert, issuer in ((got, docker_ca_cert), (want, local_ca)):
        assert cert.version == x509.Version.v3
        assert cert.subject.public_bytes() == request.subject.public_bytes()
        assert cert.issuer.public_bytes() == issuer.subject.public_bytes()
        assert cert.not_valid_before_utc == request.not_before
        assert cert.not_valid_after_utc == request.not_after
        assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
        assert cert.serial_number > 0 and cert.serial_number.bit_length() > 64
        assert keys.public_der(cert.public_key()) == keys.public_der(key)
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki == x509.AuthorityKeyIdentifier(issuer_ski.digest, None, None)
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert got.issuer.public_bytes() == want.issuer.public_bytes()
    assert [(e.oid, e.critical) for e in got.extensions] == \
        [(e.oid, e.critical) for e in want.extensions]
    for ext in got.extensions:
        if ext.oid not in (ExtensionOID.SUBJECT_KEY_IDENTIFIER,
                           ExtensionOID.AUTHORITY_KEY_IDENTIFIER):
            assert ext.value.public_bytes() == want.extensions.get_extension_for_oid(
                ext.oid).value.public_bytes()
    assert (ExtensionOID.SUBJECT_ALTERNATIVE_NAME in {e.oid for e in got.extensions}) == bool(dns)
    openssl_verify(tmp_path, docker_ca[1], got, ok=True)
    openssl_verify(tmp_path, local_ca.public_bytes(serialization.Encoding.PEM), got,
                   ok=False)


def openssl_verify(folder: Path, ca_pem: bytes, cert: x509.Certificate, ok: bool) -> None:
    (folder / "ca.pem").write_bytes(ca_pem)
    (folder / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", folder / "ca.pem",
                           folder / "leaf.pem"], capture_output=True, text=True)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr


def test_a_refused_request_is_a_ca_error_and_the_session_goes_on(docker_signer: Any) -> None:
    request = dockerlib.leaf_request("CN=x.eianet", CLIENT)
    with pytest.raises(CaError, match="refused"):
        docker_signer.sign(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                           b"-----END CERTIFICATE REQUEST-----\n", request)
    key = keys.generate(keys.parse_spec("ec:p256"))
    csr = signer.build_csr(key, request.subject, [], [])
    assert b"BEGIN CERTIFICATE" in docker_signer.sign(csr, request)


def test_recreated_container_keeps_the_ca(docker_client: Any, ca_image: str, base_image: str,
                                          docker_ca: tuple[CaConfig, bytes]) -> None:
    ca, pem = docker_ca
    docker_client.containers.get(ca.container).stop(timeout=5)
    assert not adapter.ca_running(docker_client, ca, ca_image)
    assert adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False) == pem
    docker_client.containers.get(ca.container).remove(force=True)
    assert adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False) == pem
    docker_client.containers.get(ca.container).remove(force=True)
    docker_client.containers.run(base_image, ["sleep", "600"], name=ca.container, detach=True,
                                 network_mode="none", labels=adapter.LABELS)
    assert adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False) == pem
    assert adapter.ca_running(docker_client, ca, ca_image)


def test_a_foreign_container_is_left_alone(docker_client: Any, ca_image: str,
                                           base_image: str) -> None:
    ca = ca_config(base_image)
    docker_client.containers.run(base_image, ["sleep", "600"], name=ca.container, detach=True,
                                 network_mode="none")
    try:
        with pytest.raises(EngineError, match="not made by i2-pki"):
            adapter.ensure_ca(docker_client, ca, ca_image, allow_create=True)
        assert docker_client.containers.get(ca.container).status == "running"
    finally:
        dockerlib.remove_container(docker_client, ca.container)
        dockerlib.remove_volume(docker_client, ca.volume)


def test_four_processes_get_unique_serials_and_one_record_each(
        docker_client: Any, docker_ca: tuple[CaConfig, bytes]) -> None:
    ca, _ = docker_ca
    before = ca_exec(docker_client, ca, "cat", "/ca/issued.log").splitlines()
    index_before = ca_exec(docker_client, ca, "cat", "/ca/index.txt").splitlines()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(dockerlib.sign_in_process, ca.container, 12, f"p{i}") for i in range(4)]
        serials = [s for job in jobs for s in job.result(timeout=300)]
    assert len(serials) == len(set(serials)) == 48
    log = ca_exec(docker_client, ca, "cat", "/ca/issued.log").splitlines()
    assert log[:len(before)] == before
    new = [line.split("\t") for line in log[len(before):]]
    assert len(new) == 48 and all(len(fields) == 4 for fields in new)
    assert {int(fields[0], 16) for fields in new} == set(serials)
    assert {fields[1].rsplit("=", 1)[1] for fields in new} == \
        {f"p{p}-{i}" for p in range(4) for i in range(12)}
    index = ca_exec(docker_client, ca, "cat", "/ca/index.txt").splitlines()
    assert len(index) == len(index_before) + 48


def test_without_create_a_lost_volume_is_an_error_not_a_new_ca(
        docker_client: Any, ca_image: str, base_image: str) -> None:
    ca = ca_config(base_image)
    try:
        first = adapter.ensure_ca(docker_client, ca, ca_image, allow_create=True)
        docker_client.containers.get(ca.container).remove(force=True)
        assert adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False) == first
        adapter.remove_ca(docker_client, ca)
        with pytest.raises(CaError) as err:
            adapter.ensure_ca(docker_client, ca, ca_image, allow_create=False)
        assert ca.volume in str(err.value) and "\n" not in str(err.value)
    finally:
        adapter.remove_ca(docker_client, ca)
    assert not docker_client.containers.list(all=True, filters={"name": ca.container})
    assert not docker_client.volumes.list(filters={"name": ca.volume})
