"""The rebuild table of the README, each row run with doit as a subprocess on a built copy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .project import Project

EVERYTHING = {"liberty", "solr", "solr2", "zookeeper", "zookeeper2", "zookeeper3", "db2",
              "admin_client", "connector", "Jenny", "Imogen"}


DEPLOYED = EVERYTHING - {"Jenny", "Imogen"} | {"etl_client"}  # the example's deploy targets


def chain(name: str, *stages: str) -> set[str]:
    """The tasks a change should run: the stages named, the manifest, and the component's
    deploy when its stores change."""
    redeploy = {f"deploy:{name}"} if "stores" in stages and name in DEPLOYED else set()
    return {f"{s}:{name}" for s in stages} | {"manifest"} | redeploy


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.create(tmp_path_factory.mktemp("built"))
    first = project.ran()
    assert {f"sign:{c}" for c in EVERYTHING} <= first
    return project


@pytest.fixture
def project(built: Project, tmp_path: Path) -> Project:
    return built.copy(tmp_path / "p")


def test_nothing_changed_runs_nothing(project: Project) -> None:
    assert project.ran() == set()


def test_sans_change_keeps_the_key(project: Project) -> None:
    key = (project.output / "components/liberty/key.pem").read_bytes()
    project.set_option("components.liberty", 'dns = ["liberty.eianet", "liberty", "i2.example"]')
    assert project.ran() == chain("liberty", "csr", "sign", "stores", "verify")
    assert (project.output / "components/liberty/key.pem").read_bytes() == key
    cert = x509.load_pem_x509_certificate(
        (project.output / "components/liberty/cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "i2.example" in san.get_values_for_type(x509.DNSName)


def test_subject_change_reissues_request(project: Project) -> None:
    project.set_option("components.solr", 'subject = "CN=solr.eianet, O=i2Group, C=GB"')
    assert project.ran() == chain("solr", "csr", "sign", "stores", "verify")


@pytest.mark.parametrize("line", ['profile = "server_client"', "validity_days = 200"])
def test_profile_or_validity_change_resigns_only(project: Project, line: str) -> None:
    project.set_option("components.solr", line)
    assert project.ran() == chain("solr", "sign", "stores", "verify")


def test_key_type_change_rebuilds_from_keygen(project: Project) -> None:
    project.set_option("components.zookeeper", 'key = "ec:p256"')
    assert project.ran() == chain("zookeeper", "keygen", "csr", "sign", "stores", "verify")
    pem = (project.output / "components/zookeeper/key.pem").read_bytes()
    assert isinstance(serialization.load_pem_private_key(pem, None), ec.EllipticCurvePrivateKey)


@pytest.mark.parametrize("table, line", [
    ("components.liberty", 'keystore = "pkcs12"'),
    ("components.db2", 'encryption = "legacy"'),
    ("components.solr", 'password_env = "SOLR_PASSWORD"'),
])
def test_store_change_repackages_only(project: Project, table: str, line: str) -> None:
    component = table.split(".")[1]
    project.set_option(table, line)
    assert project.ran(SOLR_PASSWORD="solr-secret") == chain(component, "stores", "verify")
    if "pkcs12" in line:  # the store of the type used before is gone, not left to confuse
        assert not (project.output / f"components/{component}/keystore.jks").exists()
        assert (project.output / f"components/{component}/keystore.p12").exists()


def test_password_value_change_repackages_only(project: Project) -> None:
    project.set_option("components.solr", 'password_env = "SOLR_PASSWORD"')
    project.ran(SOLR_PASSWORD="first-secret")
    assert project.ran(SOLR_PASSWORD="second-secret") == chain("solr", "stores", "verify")


def test_added_component_runs_only_its_tasks(project: Project) -> None:
    project.set_option("components.search3", 'profile = "server"')
    assert project.ran() == chain("search3", "keygen", "csr", "sign", "stores", "verify")


@pytest.mark.parametrize("victim, expected", [
    ("key.pem", ("keygen", "csr", "sign", "stores", "verify")),
    ("cert.pem", ("sign", "stores", "verify")),
    ("keystore.jks", ("stores", "verify")),
    ("truststore.jks", ("stores", "verify")),
])
@pytest.mark.parametrize("how", ["deleted", "damaged"])
def test_deleted_or_damaged_output_is_rebuilt(project: Project, victim: str,
                                              expected: tuple[str, ...], how: str) -> None:
    path = project.output / "components/solr2" / victim
    if how == "deleted":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    assert project.ran() == chain("solr2", *expected)
    assert project.ran() == set()


def test_deleted_csr_is_rebuilt(project: Project) -> None:
    (project.output / "components/solr/csr.pem").unlink()
    # An RSA request is deterministic: the same bytes come back, so nothing after it reruns.
    assert "csr:solr" in project.ran()
    assert project.ran() == set()


def _resign_near_expiry(project: Project, name: str, days: int) -> None:
    """Replace a certificate with one from the same CA and key, of the configured length
    (365 days), issued long ago so that it expires in ``days``."""
    out = project.output
    ca_key = serialization.load_pem_private_key((out / "ca/ca.key.pem").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((out / "ca/ca.crt.pem").read_bytes())
    old = x509.load_pem_x509_certificate((out / f"components/{name}/cert.pem").read_bytes())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + dt.timedelta(days=days - 365, minutes=-5))
               .not_valid_after(now + dt.timedelta(days=days)))
    for ext in old.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    (out / f"components/{name}/cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_certificate_near_expiry_is_renewed(project: Project) -> None:
    _resign_near_expiry(project, "liberty", days=10)
    assert project.ran() == chain("liberty", "sign", "stores", "verify")
    cert = x509.load_pem_x509_certificate(
        (project.output / "components/liberty/cert.pem").read_bytes())
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def test_certificate_outside_renewal_window_is_kept(project: Project) -> None:
    _resign_near_expiry(project, "liberty", days=45)
    # The new cert.pem differs from the one the stores were built from: stores follow it.
    assert project.ran() == chain("liberty", "stores", "verify")


def test_new_ca_resigns_everything(project: Project) -> None:
    old = (project.output / "ca/ca.crt.pem").read_bytes()
    assert project.ran("new_ca") == {"new_ca"}
    assert (project.output / "ca/ca.crt.pem").read_bytes() != old
    assert list(project.output.glob("ca.retired-*/ca.key.pem"))
    ran = project.ran()
    assert {f"sign:{c}" for c in EVERYTHING} <= ran
    assert {f"stores:{c}" for c in EVERYTHING | {"etl_client"}} <= ran
    assert {f"deploy:{c}" for c in DEPLOYED} <= ran
    assert not any(t.startswith(("keygen:", "csr:")) for t in ran)


@pytest.mark.parametrize("victim", ["ca/ca.key.pem", "ca/ca.crt.pem"])
def test_lost_ca_file_stops_the_build(project: Project, victim: str) -> None:
    before = {p: p.read_bytes() for p in project.output.rglob("*") if p.is_file()
              and p.name != ".doit.db"}
    (project.output / victim).unlink()
    proc = project.doit(check=False)
    assert proc.returncode != 0
    assert "never regenerated implicitly" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    after = {p: p.read_bytes() for p in project.output.rglob("*") if p.is_file()
             and p.name != ".doit.db"}
    del before[project.output / victim]
    assert after == before


def test_lost_ca_folder_with_issued_certificates_stops_the_build(project: Project) -> None:
    for p in (project.output / "ca").iterdir():
        p.unlink()
    proc = project.doit(check=False)
    assert proc.returncode != 0
    assert "never created silently" in proc.stdout + proc.stderr
    assert not (project.output / "ca/ca.key.pem").exists()


def test_damaged_ca_key_stops_the_build(project: Project) -> None:
    (project.output / "ca/ca.key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    proc = project.doit(check=False)
    assert proc.returncode != 0
    assert "cannot read the CA" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_sign_one_component_builds_exactly_what_it_needs(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "fresh")
    assert project.ran("sign:solr2") == {"ca", "keygen:solr2", "csr:solr2", "sign:solr2"}
    assert not (project.output / "components/solr").exists()


def test_manifest_lists_every_component_without_secrets(project: Project) -> None:
    doc = json.loads((project.output / "manifest.json").read_text())
    assert set(doc["components"]) == EVERYTHING | {"etl_client"}
    liberty = doc["components"]["liberty"]
    assert liberty["certificate"] == "components/liberty/cert.pem"
    assert liberty["dns"] == ["liberty.eianet", "liberty"]
    assert [s["role"] for s in liberty["stores"]] == ["keystore", "truststore"]
    assert {s["password_source"] for s in liberty["stores"]} == {"env:SSL_PASSWORD"}
    assert doc["components"]["etl_client"]["certificate"] is None
    assert "changeit1" not in (project.output / "manifest.json").read_text()


def test_lost_state_file_keeps_keys_and_certificates(project: Project) -> None:
    """doit's state file deleted (or a first build killed before it was written): the files
    themselves show what is current, so no key is regenerated and nothing re-signed."""
    kept = {p: p.read_bytes() for p in project.output.glob("components/*/*.pem")
            if p.name in ("key.pem", "csr.pem", "cert.pem")}
    (project.output / ".doit.db").unlink()
    ran = project.ran()
    assert not any(t.startswith("keygen:") for t in ran)
    assert {p: p.read_bytes() for p in kept} == kept
    assert project.ran() == set()
