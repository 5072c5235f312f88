"""The whole doit graph with the CA in its container, on a real engine, from an offline base."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests import dockerlib

from .project import Project
from .test_rebuild import DEPLOYED, EVERYTHING


@contextlib.contextmanager
def own_ca(tmp_path: Path, client: Any, base_image: str,
           components: str) -> Iterator[tuple[Project, dict[str, str]]]:
    """A project whose docker CA has a container, volume and image of its own, removed after."""
    project = Project.create(tmp_path / "p", PKI_CA_BACKEND="docker",
                             PKI_CA_BASE_IMAGE=base_image, PKI_CONFIG="config/own.toml")
    names = {k: dockerlib.unique(f"pki-{k}") for k in ("container", "volume", "image")}
    text = "[ca]\nkey = \"rsa:2048\"\n" + "".join(f'{k} = "{v}"\n' for k, v in names.items())
    (project.root / "config/own.toml").write_text(text + components)
    try:
        yield project, names
    finally:
        dockerlib.remove_container(client, names["container"])
        for volume in client.volumes.list():
            if volume.name.startswith(names["volume"]):  # with retired copies
                dockerlib.remove_volume(client, volume.name)
        dockerlib.remove_image(client, names["image"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, docker_client: Any,
          base_image: str) -> Iterator[Project]:
    """The example deployment built with PKI_CA_BACKEND=auto while an engine answers."""
    project = Project.create(tmp_path_factory.mktemp("dockerca"), PKI_CA_BACKEND="auto",
                             PKI_CA_BASE_IMAGE=base_image)
    names = {k: dockerlib.unique(f"pki-{k}") for k in ("container", "volume", "image")}
    for key, value in names.items():
        project.set_option("ca", f'{key} = "{value}"')
    project.names = names  # type: ignore[attr-defined]
    proc = project.doit()
    assert "ca: CA backend docker (auto: a Docker engine answered)" in proc.stderr
    try:
        yield project
    finally:
        dockerlib.remove_container(docker_client, names["container"])
        for volume in docker_client.volumes.list():
            if volume.name.startswith(names["volume"]):  # with the retired copies
                dockerlib.remove_volume(docker_client, volume.name)
        dockerlib.remove_image(docker_client, names["image"])
        docker_client.images.prune(filters={"dangling": True, "label": "i2-pki.role=ca-image"})


def test_ca_key_never_reaches_the_host(built: Project, docker_client: Any) -> None:
    assert sorted(p.name for p in (built.output / "ca").iterdir()) == [
        "backend", "base.id", "ca.crt.pem", "container.id", "image.id"]
    for path in built.output.rglob("*"):
        if path.is_file() and "PRIVATE KEY" in path.read_text(errors="replace"):
            assert path.name == "key.pem" and path.parent.parent.name == "components", path
    # Nor is it in the image: a fresh container of the image, without the volume, has no CA.
    image = built.names["image"]  # type: ignore[attr-defined]
    fresh = docker_client.containers.run(image, ["ls", "-A", "/ca"], detach=True,
                                         network_mode="none", entrypoint=[])
    fresh.wait()
    listing = fresh.logs()
    fresh.remove(v=True)  # with its anonymous /ca volume
    assert listing.strip() == b""
    attrs = docker_client.containers.get(built.names["container"]).attrs  # type: ignore[attr-defined]
    assert attrs["HostConfig"]["NetworkMode"] == "none"


def test_every_leaf_verifies_strictly(built: Project) -> None:
    ca = built.output / "ca/ca.crt.pem"
    for name in EVERYTHING:
        cert = built.output / f"components/{name}/cert.pem"
        proc = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(ca),
                               str(cert)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_second_run_is_a_no_op(built: Project) -> None:
    assert built.ran() == set()


def test_ca_records_what_it_issued(built: Project, docker_client: Any) -> None:
    container = docker_client.containers.get(built.names["container"])  # type: ignore[attr-defined]
    log = container.exec_run(["cat", "/ca/issued.log"]).output.decode().splitlines()
    serials = {line.split("\t")[0].lower().lstrip("0") for line in log}
    for name in EVERYTHING:
        cert = x509.load_pem_x509_certificate(
            (built.output / f"components/{name}/cert.pem").read_bytes())
        assert f"{cert.serial_number:x}" in serials


def test_removed_ca_container_keeps_the_ca(built: Project, docker_client: Any,
                                           tmp_path: Path) -> None:
    project = built.copy(tmp_path / "p")
    before = (project.output / "ca/ca.crt.pem").read_bytes()
    docker_client.containers.get(built.names["container"]).remove(force=True)  # type: ignore
    assert project.ran() == {"ca"}
    assert (project.output / "ca/ca.crt.pem").read_bytes() == before
    assert project.ran() == set()


def test_switching_backend_stops(built: Project, tmp_path: Path) -> None:
    project = built.copy(tmp_path / "p")
    proc = project.doit(check=False, PKI_CA_BACKEND="local")
    assert proc.returncode != 0
    assert "held by the docker backend but local was chosen; two CAs are never mixed" in (
        proc.stdout)
    assert not (project.output / "ca/ca.key.pem").exists()


def test_parallel_signing_keeps_serials_unique(tmp_path: Path, docker_client: Any,
                                               base_image: str) -> None:
    """doit -n 4 over 20 components: four signing sessions at once."""
    components = "".join(f"[components.node{i}]\nkey = \"ec:p256\"\n" for i in range(20))
    with own_ca(tmp_path, docker_client, base_image, components) as (project, names):
        project.doit("-n", "4")
        serials = [x509.load_pem_x509_certificate(p.read_bytes()).serial_number
                   for p in (project.output / "components").glob("*/cert.pem")]
        assert len(serials) == len(set(serials)) == 20
        container = docker_client.containers.get(names["container"])
        log = container.exec_run(["cat", "/ca/issued.log"]).output.decode().splitlines()
        index = container.exec_run(["cat", "/ca/index.txt"]).output.decode().splitlines()
        issued = {f"{s:X}".rjust(40, "0") for s in serials}
        assert {line.split("\t")[0].rjust(40, "0") for line in log} == issued
        ca = x509.load_pem_x509_certificate((project.output / "ca/ca.crt.pem").read_bytes())
        # index.txt also records the CA's own certificate, made at init.
        assert {line.split("\t")[3].rjust(40, "0") for line in index} == issued | {
            f"{ca.serial_number:X}".rjust(40, "0")}
        assert len(log) == 20 and len(index) == 21
        assert project.ran() == set()


def test_new_base_image_under_same_tag_rebuilds_the_ca_image(
        built: Project, docker_client: Any, base_image: str, tmp_path: Path) -> None:
    """An operator docker-loads a newer base under the same tag: the CA image is rebuilt and
    the container recreated from it; the CA, and so every certificate, stays."""
    project = built.copy(tmp_path / "p")
    project.doit()  # earlier tests recreated the shared container: `ca` checks it again
    alias = dockerlib.unique("pki-base-alias") + ":latest"
    docker_client.images.get(base_image).tag(alias)
    try:
        project.env["PKI_CA_BASE_IMAGE"] = alias
        # The base setting changed, its content did not: the same image comes back.
        assert project.ran() == {"ca_image"}
        assert project.ran() == set()
        # Same tag, other content: here the CA image itself stands in for a newer base.
        docker_client.images.get(built.names["image"]).tag(alias)  # type: ignore[attr-defined]
        ca = (project.output / "ca/ca.crt.pem").read_bytes()
        assert project.ran() == {"ca_image", "ca"}
        assert (project.output / "ca/ca.crt.pem").read_bytes() == ca
    finally:
        dockerlib.remove_image(docker_client, alias)


def test_new_ca_checks_before_it_retires(built: Project, docker_client: Any,
                                         tmp_path: Path) -> None:
    """A new CA that cannot be made (no base image) leaves the old one exactly as it was."""
    project = built.copy(tmp_path / "p")
    project.doit()  # earlier tests may have moved the shared container to another image
    old = (project.output / "ca/ca.crt.pem").read_bytes()
    proc = project.doit("new_ca", check=False, PKI_CA_BASE_IMAGE="nowhere/none:1")
    assert proc.returncode != 0 and "nowhere/none:1 is not in the engine" in proc.stdout
    assert (project.output / "ca/ca.crt.pem").read_bytes() == old
    assert project.ran() == set()


def test_new_ca_leaves_a_ca_it_does_not_own_alone(built: Project, docker_client: Any,
                                                 tmp_path: Path) -> None:
    """Another output folder (a local CA) with the same container and volume names."""
    other = Project.create(tmp_path / "other", PKI_CA_BACKEND="local")
    names = built.names  # type: ignore[attr-defined]
    for key in ("container", "volume", "image"):
        other.set_option("ca", f'{key} = "{names[key]}"')
    other.doit("ca")
    built.doit()
    proc = other.doit("new_ca", check=False, PKI_CA_BACKEND="docker",
                      PKI_CA_BASE_IMAGE=built.env["PKI_CA_BASE_IMAGE"])
    assert proc.returncode != 0
    assert "exists but this output folder's CA is not in it; it is left alone" in proc.stdout
    assert built.ran() == set()  # the owner's CA is untouched


def test_lost_volume_stops_then_new_ca_on_purpose(built: Project, docker_client: Any,
                                                  tmp_path: Path) -> None:
    # Last in this module: it replaces the CA in the shared volume.
    project = built.copy(tmp_path / "p")
    names = built.names  # type: ignore[attr-defined]
    old = (project.output / "ca/ca.crt.pem").read_bytes()
    dockerlib.remove_container(docker_client, names["container"])
    dockerlib.remove_volume(docker_client, names["volume"])
    proc = project.doit(check=False)
    assert proc.returncode != 0
    assert f"the CA volume {names['volume']} holds no CA" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (project.output / "ca/ca.crt.pem").read_bytes() == old
    project.doit("new_ca")
    assert (project.output / "ca/ca.crt.pem").read_bytes() != old
    assert list(project.output.glob("ca.retired-*/ca.crt.pem"))
    ran = project.ran()
    assert {f"sign:{c}" for c in EVERYTHING} | {f"stores:{c}" for c in EVERYTHING} <= ran
    assert {f"deploy:{c}" for c in DEPLOYED} <= ran
    assert not any(t.startswith("keygen:") for t in ran)


def test_new_ca_keeps_the_old_ca_in_a_volume(tmp_path: Path, docker_client: Any,
                                             base_image: str) -> None:
    with own_ca(tmp_path, docker_client, base_image, "[components.web]\n") as (project, names):
        project.doit()
        old = (project.output / "ca/ca.crt.pem").read_bytes()
        proc = project.doit("new_ca")
        retired = [v.name for v in docker_client.volumes.list()
                   if v.name.startswith(names["volume"] + ".retired-")]
        assert len(retired) == 1 and f"kept in volume {retired[0]}" in proc.stderr
        kept = docker_client.containers.run(
            names["image"], entrypoint=["cat", "/old/ca.crt"], network_mode="none",
            volumes={retired[0]: {"bind": "/old", "mode": "ro"}}, detach=True)
        kept.wait()
        assert kept.logs(stdout=True, stderr=False).strip() == old.strip()
        kept.remove(v=True)
        assert (project.output / "ca/ca.crt.pem").read_bytes() != old
        assert {"sign:web", "stores:web"} <= project.ran()


def test_a_ca_replaced_behind_our_back_is_found(tmp_path: Path, docker_client: Any,
                                                base_image: str) -> None:
    """Someone else recreates the container with another CA in the volume, or the CA's key is
    lost inside it: the build stops with one line instead of mixing CAs."""
    from tasks import config
    from tasks.adapters import docker as adapter

    with own_ca(tmp_path, docker_client, base_image, "[components.web]\n") as (project, names):
        project.doit()
        container = docker_client.containers.get(names["container"])
        assert container.exec_run(["mv", "/ca/ca.key", "/ca/ca.key.away"]).exit_code == 0
        project.set_option("components.web", 'dns = ["web2"]')
        proc = project.doit(check=False)
        assert proc.returncode != 0
        assert "has lost its key or certificate (restore the volume" in proc.stdout
        assert "Traceback" not in proc.stdout + proc.stderr
        container.exec_run(["mv", "/ca/ca.key.away", "/ca/ca.key"])
        assert "sign:web" in project.ran()

        # Another CA swapped into the running container: its certificate never reaches a store.
        swap = ("openssl req -x509 -newkey rsa:2048 -nodes -keyout /ca/ca.key -out /ca/ca.crt "
                "-subj /CN=other -days 10 2>/dev/null")
        assert container.exec_run(["sh", "-c", swap]).exit_code == 0
        stores_before = (project.output / "components/web/keystore.jks").read_bytes()
        (project.output / "components/web/cert.pem").unlink()
        proc = project.doit("-c", check=False)
        assert proc.returncode != 0
        assert "was not issued by output/ca/ca.crt.pem" in proc.stdout
        assert not (project.output / "components/web/cert.pem").exists()
        assert (project.output / "components/web/keystore.jks").read_bytes() == stores_before

        cfg = config.load(project.root / "config/own.toml")
        image = (project.output / "ca/image.id").read_text().strip()
        dockerlib.remove_container(docker_client, names["container"])
        dockerlib.remove_volume(docker_client, names["volume"])
        adapter.ensure_ca(docker_client, cfg.ca, image, allow_create=True)  # another CA
        proc = project.doit(check=False)
        assert proc.returncode != 0
        assert "is not the CA in output/ca/ca.crt.pem; two CAs are never mixed" in proc.stdout


def test_interrupted_new_ca_is_finished_by_new_ca(tmp_path: Path, docker_client: Any,
                                                  base_image: str) -> None:
    """new_ca killed while the new CA was being made (volume half-written, no certificate yet):
    the build explains, and running new_ca again finishes the job."""
    with own_ca(tmp_path, docker_client, base_image, "[components.web]\n") as (project, names):
        project.doit()
        # The state new_ca leaves when killed during `ca.sh init`: its claim on the new CA
        # recorded, the CA certificate not yet exported, the volume holding part of a CA.
        container = docker_client.containers.get(names["container"])
        container.exec_run(["sh", "-c", "rm /ca/ca.crt /ca/ca.key"])
        (project.output / "ca/ca.crt.pem").unlink()
        proc = project.doit(check=False)
        assert proc.returncode != 0 and "doit new_ca" in proc.stdout
        project.doit("new_ca")
        assert (project.output / "ca/ca.crt.pem").exists()
        assert "sign:web" in project.ran()


def test_a_fresh_output_folder_does_not_adopt_a_ca_silently(tmp_path: Path, docker_client: Any,
                                                            base_image: str) -> None:
    """output/ca gone (or another project with the same names) while the volume holds a CA:
    the build stops and names PKI_CA_ADOPT=1; with it, the same CA is used and nothing else
    changes."""
    with own_ca(tmp_path, docker_client, base_image, "[components.web]\n") as (project, names):
        project.doit()
        container_id = docker_client.containers.get(names["container"]).id
        old = (project.output / "ca/ca.crt.pem").read_bytes()
        for path in (project.output / "ca").iterdir():
            path.unlink()
        proc = project.doit(check=False)
        assert proc.returncode != 0
        assert f"volume {names['volume']} already holds a CA that this output folder did not " \
               "create" in proc.stdout and "PKI_CA_ADOPT=1" in proc.stdout
        assert docker_client.containers.get(names["container"]).id == container_id  # untouched
        ran = project.ran(PKI_CA_ADOPT="1")
        assert (project.output / "ca/ca.crt.pem").read_bytes() == old
        assert not any(t.startswith(("keygen:", "sign:")) for t in ran)
