"""Config loading: the example parses, every problem is reported at once with file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import config
from tasks.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "deployment.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.toml"
    path.write_text(text)
    return path


def test_example_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PKI_DB_DIALECT", "PKI_CA_BACKEND", "PKI_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    cfg = config.load(EXAMPLE)
    assert set(cfg.components) == {"liberty", "solr", "solr2", "zookeeper", "zookeeper2",
                                   "zookeeper3", "db2", "admin_client", "connector", "Jenny",
                                   "Imogen", "etl_client"}
    liberty = cfg.components["liberty"]
    assert liberty.subject == "CN=liberty.eianet, C=GB"
    assert liberty.dns == ("liberty.eianet", "liberty")
    assert (liberty.keystore, liberty.truststore) == ("jks", "jks")
    assert cfg.components["Jenny"].alias == "jenny"
    assert cfg.components["Jenny"].encryption == "legacy"
    assert not cfg.components["etl_client"].has_key
    assert cfg.ca.key == config.keys.parse_spec("rsa:4096") and cfg.ca.validity_days == 1095
    assert cfg.renew_before_days == 30 and cfg.backend == "auto"


@pytest.mark.parametrize("dialect, kinds", [("sqlserver", ("pem", "pem")),
                                            ("postgres", ("pem", "pem"))])
def test_dialect_picks_the_database(monkeypatch: pytest.MonkeyPatch, dialect: str,
                                    kinds: tuple[str, str]) -> None:
    monkeypatch.setenv("PKI_DB_DIALECT", dialect)
    cfg = config.load(EXAMPLE)
    assert dialect in cfg.components and "db2" not in cfg.components
    db = cfg.components[dialect]
    assert (db.keystore, db.truststore) == kinds


def test_all_problems_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """
[settings]
ca_backend = "cloud"
[components.web]
profile = "serverish"
key = "rsa:1024"
dns = ["ok.example", "bad name"]
ip = ["300.1.1.1"]
keystore = "zip"
kye = "typo"
[components.sqlserver]
dialect = "sqlserver"
key = "ec:p256"
""")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    problems = info.value.problems
    text = "\n".join(problems)
    for key in ("settings.ca_backend", "components.web.profile", "components.web.key",
                "components.web.dns[1]", "components.web.ip[0]", "components.web.keystore",
                "components.web.kye"):
        assert f"{path}: {key}" in text, key
    assert all("\n" not in p for p in problems)


def test_sqlserver_needs_rsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKI_DB_DIALECT", "sqlserver")
    path = write(tmp_path, '[components.sqlserver]\ndialect = "sqlserver"\nkey = "ec:p256"\n')
    with pytest.raises(ConfigError, match=r"components.sqlserver.key: .*RSA"):
        config.load(path)


def test_validity_must_exceed_renewal_window(tmp_path: Path) -> None:
    path = write(tmp_path, "[components.a]\nvalidity_days = 20\n")
    with pytest.raises(ConfigError, match="renew_before_days"):
        config.load(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[components.a\n"))
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.toml")


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKI_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("PKI_CA_BACKEND", "local")
    monkeypatch.setenv("PKI_CONFIG", str(write(tmp_path, "[components.a]\n")))
    cfg = config.load()
    assert cfg.output == tmp_path / "out" and cfg.backend == "local"
    assert list(cfg.components) == ["a"]


def test_values_that_would_never_settle_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """
[defaults]
key = "rsa:1024"
[ca]
alias = "My CA"
[profiles.empty]
key_usage = []
[profiles.enc]
key_usage = ["key_encipherment"]
[components.x]
validity_days = 100000000
ip = ["fe80::1%eth0"]
[components.y]
profile = "enc"
key = "ec:p256"
[[components.y.deploy]]
container = "y"
path = "/opt/x';touch /tmp/INJECTED;'"
owner = "root"
secret_mode = "999"
""")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    text = "\n".join(info.value.problems)
    for key in ("defaults.key", "ca.alias", "profiles.empty.key_usage",
                "components.x.validity_days", "components.x.ip[0]", "components.y.profile",
                "components.y.deploy[0].path", "components.y.deploy[0].owner",
                "components.y.deploy[0].secret_mode"):
        assert f"{path}: {key}: " in text, key
    assert "Traceback" not in text


def test_ca_alias_is_folded_to_lower_case(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, '[ca]\nalias = "MyCA"\n[components.a]\n'))
    assert cfg.ca.alias == "myca"  # what JKS stores, so stores settle


def test_deploy_targets(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, """
[components.a]
[[components.a.deploy]]
container = "a1"
path = "/opt/i2/keys/stores/"
owner = "1000:1001"
public_mode = "0640"
files = { keystore = "i2-a-keystore.jks" }
docker_host = "ssh://ops@host2"
required = false
"""))
    (target,) = cfg.components["a"].deploy
    assert (target.container, target.path, target.uid, target.gid) == ("a1", "/opt/i2/keys/stores",
                                                                        1000, 1001)
    assert (target.secret_mode, target.public_mode) == (0o600, 0o640)
    assert target.name_of("keystore", "keystore.jks") == "i2-a-keystore.jks"
    assert target.name_of("ca", "ca.crt.pem") == "ca.crt.pem"
    assert target.engine == "ssh://ops@host2" and not target.required


def test_duplicates_and_other_dialects_are_checked(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PKI_DB_DIALECT", raising=False)
    path = write(tmp_path, """
[components.a]
dns = ["a.example", "A.example"]
ip = ["10.0.0.1", "10.0.0.1"]
[components.postgres]
dialect = "postgres"
key = "rsa:1"
""")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    text = "\n".join(info.value.problems)
    assert "components.a.dns[1]: 'A.example' is listed twice" in text
    assert "components.a.ip[1]: '10.0.0.1' is listed twice" in text
    assert "components.postgres.key" in text  # checked although db2 is the dialect
