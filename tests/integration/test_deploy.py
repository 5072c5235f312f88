"""deploy on real engines: two private daemons, real containers, owner/mode/bytes checked inside."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import dockerlib

from .engines import PrivateEngine
from .project import Project


@pytest.fixture(scope="module")
def engine2(docker_client: Any) -> Iterator[tuple[str, Any, str]]:
    """A second engine (a 'remote host'), with the scratch base image built on it."""
    engine = PrivateEngine()
    client = engine.start()
    try:
        tag = dockerlib.build_base_image(client, dockerlib.unique("pki-e2-base") + ":latest")
        yield engine.url, client, tag
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()
        engine.stop()


def _run(client: Any, image: str, name: str, start: bool = True) -> Any:
    container = client.containers.create(image, ["sleep", "3600"], name=name,
                                         network_mode="none")
    if start:
        container.start()
    return container


def inside(container: Any, path: str) -> tuple[str, str]:
    """Owner, mode and SHA-256 as the container itself sees them (busybox stat, sha256sum)."""
    result = container.exec_run(["sh", "-c", f"stat -c '%u:%g %a' {path} && sha256sum {path}"])
    assert result.exit_code == 0, result.output
    lines = result.output.decode().split("\n")
    return lines[0].strip(), lines[1].split()[0]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CONFIG = """
[settings]
ca_backend = "local"
[ca]
key = "rsa:2048"
[components.web]
profile = "server_client"
[[components.web.deploy]]
container = "{web}"
path = "/opt/i2/keys/stores"
owner = "1000:1001"
files = {{ keystore = "i2-liberty-keystore.jks", truststore = "i2-jks-truststore.jks" }}
[[components.web.deploy]]
container = "{remote}"
docker_host = "{url2}"
path = "/keys"
owner = "2000:2000"
secret_mode = "0640"
[components.db]
keystore = "pem"
truststore = "pem"
[[components.db.deploy]]
container = "{db}"
path = "/var/lib/postgresql/certs"
owner = "999:999"
[components.opt]
[[components.opt.deploy]]
container = "{missing}"
path = "/keys"
required = false
"""


@pytest.fixture
def deployment(tmp_path: Path, docker_client: Any, base_image: str,
               engine2: tuple[str, Any, str]) -> Iterator[tuple[Project, dict[str, str]]]:
    url2, client2, image2 = engine2
    names = {k: dockerlib.unique(k) for k in ("web", "remote", "db", "missing")}
    _run(docker_client, base_image, names["web"])
    _run(client2, image2, names["remote"])
    _run(docker_client, base_image, names["db"], start=False)  # created, never started
    project = Project.create(tmp_path / "p", PKI_CONFIG="config/deploy.toml")
    (project.root / "config/deploy.toml").write_text(CONFIG.format(url2=url2, **names))
    try:
        yield project, names
    finally:
        for name in names.values():
            dockerlib.remove_container(docker_client, name)
            dockerlib.remove_container(client2, name)


def test_deploy_across_two_engines(deployment: tuple[Project, dict[str, str]],
                                   docker_client: Any, engine2: tuple[str, Any, str]) -> None:
    project, names = deployment
    proc = project.doit()
    assert "deploy opt: " in proc.stdout and "skipped (no such container, optional)" in proc.stdout
    out = project.output / "components"
    web = docker_client.containers.get(names["web"])
    assert inside(web, "/opt/i2/keys/stores/i2-liberty-keystore.jks") == (
        "1000:1001 600", sha(out / "web/keystore.jks"))
    assert inside(web, "/opt/i2/keys/stores/i2-jks-truststore.jks") == (
        "1000:1001 644", sha(out / "web/truststore.jks"))
    assert inside(web, "/opt/i2/keys/stores/ca.crt.pem") == (
        "1000:1001 644", sha(project.output / "ca/ca.crt.pem"))
    folder = web.exec_run(["stat", "-c", "%u:%g %a", "/opt/i2/keys/stores"]).output.decode()
    assert folder.strip() == "1000:1001 755"
    listing = web.exec_run(["ls", "-a", "/opt/i2/keys/stores"]).output.decode().split()
    assert sorted(listing) == [".", "..", "ca.crt.pem", "i2-jks-truststore.jks",
                               "i2-liberty-keystore.jks"]  # no temporary names left
    assert "(atomic)" in proc.stdout
    remote = engine2[1].containers.get(names["remote"])
    assert inside(remote, "/keys/keystore.jks") == ("2000:2000 640", sha(out / "web/keystore.jks"))
    db = docker_client.containers.get(names["db"])
    db.start()
    assert inside(db, "/var/lib/postgresql/certs/key.pem") == ("999:999 600",
                                                              sha(out / "db/key.pem"))
    assert inside(db, "/var/lib/postgresql/certs/fullchain.pem")[1] == sha(out / "db/fullchain.pem")
    # A no-op: nothing runs, the optional missing container does not rerun its deploy.
    assert project.ran() == set()


def test_recreated_container_reruns_only_its_deploy(
        deployment: tuple[Project, dict[str, str]], docker_client: Any, base_image: str) -> None:
    project, names = deployment
    project.doit()
    docker_client.containers.get(names["web"]).remove(force=True)
    web = _run(docker_client, base_image, names["web"])
    assert project.ran() == {"deploy:web"}
    assert inside(web, "/opt/i2/keys/stores/i2-liberty-keystore.jks")[0] == "1000:1001 600"
    # The optional container appears: it gets its stores once.
    _run(docker_client, base_image, names["missing"])
    assert project.ran() == {"deploy:opt"}
    assert project.ran() == set()


def test_changed_store_redeploys_and_tampering_is_found(
        deployment: tuple[Project, dict[str, str]], docker_client: Any) -> None:
    project, names = deployment
    project.doit()
    project.set_option("components.web", 'encryption = "legacy"\nkeystore = "pkcs12"')
    assert {"stores:web", "deploy:web"} <= project.ran()
    web = docker_client.containers.get(names["web"])
    web.exec_run(["sh", "-c", "echo tampered > /opt/i2/keys/stores/ca.crt.pem"])
    assert project.ran() == set()  # the cheap check: one API call per engine
    assert project.ran(PKI_DEPLOY_VERIFY="1") == {"deploy:web"}
    assert inside(web, "/opt/i2/keys/stores/ca.crt.pem")[1] == sha(project.output / "ca/ca.crt.pem")
    # A store type no longer used is removed from the container, not left to be trusted.
    db = docker_client.containers.get(names["db"])
    db.start()
    project.set_option("components.db", 'keystore = "jks"')
    project.set_option("components.db", 'truststore = "jks"')
    assert "deploy:db" in project.ran()
    listing = db.exec_run(["ls", "/var/lib/postgresql/certs"]).output.decode().split()
    assert sorted(listing) == ["ca.crt.pem", "keystore.jks", "truststore.jks"]


def test_required_container_missing_is_one_line(
        deployment: tuple[Project, dict[str, str]], docker_client: Any) -> None:
    project, names = deployment
    docker_client.containers.get(names["db"]).remove(force=True)
    proc = project.doit(check=False)
    assert proc.returncode != 0
    engine = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert (f"error: deploy db: container {names['db']} on engine {engine}: no such container "
            "(start it, or set required = false)") in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_example_builds_without_any_engine(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    proc = project.doit()
    assert proc.stdout.count("no Docker engine answers at unix://") == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert project.ran() == set()
