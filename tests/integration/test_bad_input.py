"""Bad input: one clear line per problem, a non-zero exit, and nothing already built changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .project import Project


def snapshot(project: Project) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in project.output.rglob("*")
            if p.is_file() and p.name != ".doit.db"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.create(tmp_path_factory.mktemp("bad"))
    project.ran()
    return project


@pytest.fixture
def project(built: Project, tmp_path: Path) -> Project:
    return built.copy(tmp_path / "p")


def test_config_errors_are_one_line_each(project: Project) -> None:
    before = snapshot(project)
    project.set_option("components.liberty", 'key = "rsa:1024"')
    project.set_option("components.solr", 'dns = ["solr", "not a name"]')
    proc = project.doit(check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: config/deployment.toml: components.liberty.key: 'rsa:1024' is not a supported "
        "key (use one of rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384, ec:p521)",
        "error: config/deployment.toml: components.solr.dns[1]: 'not a name' is not a valid DNS "
        "name (use letters, digits, '-', '_' and '.')",
    ]
    assert snapshot(project) == before


def test_short_password_fails_cleanly(project: Project) -> None:
    before = snapshot(project)
    project.set_option("components.solr", 'password_env = "SOLR_PASSWORD"')
    proc = project.doit(check=False, SOLR_PASSWORD="abc")
    assert proc.returncode != 0
    assert "error: stores solr: $SOLR_PASSWORD: the password has 3 characters" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(project) == before


def test_unknown_backend_env(project: Project) -> None:
    proc = project.doit(check=False, PKI_CA_BACKEND="cloud")
    assert proc.returncode != 0
    assert "settings.ca_backend (or $PKI_CA_BACKEND): 'cloud' is not one of" in proc.stderr


def test_missing_password_file(project: Project) -> None:
    project.set_option("settings", 'password_file = "nope.txt"')
    proc = project.doit(check=False, SSL_PASSWORD="<unset>")
    assert proc.returncode != 0
    assert "nope.txt: cannot read the password file" in proc.stdout
