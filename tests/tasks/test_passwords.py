"""Password sources and rules, without a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import config, passwords
from tasks.adapters import fs
from tasks.errors import PasswordError


@pytest.fixture
def comp(tmp_path: Path) -> config.Component:
    path = tmp_path / "d.toml"
    path.write_text("[components.web]\n")
    return config.load(path).components["web"]


def test_order_env_then_generated(comp: config.Component, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    layout = fs.Layout(tmp_path / "out")
    monkeypatch.setenv("PKI_NO_PROMPT", "1")
    monkeypatch.delenv("SSL_PASSWORD", raising=False)
    assert passwords.get(layout, comp, "keystore", create=False) is None
    generated = passwords.get(layout, comp, "keystore", create=True)
    assert generated and len(generated) >= 16
    assert passwords.get(layout, comp, "keystore", create=False) == generated
    assert (layout.password_file("web", "keystore").stat().st_mode & 0o777) == 0o600
    assert passwords.source(layout, comp, "keystore") == "file:secrets/web.keystore.password"
    monkeypatch.setenv("SSL_PASSWORD", "from-env-1")
    assert passwords.get(layout, comp, "keystore", create=False) == "from-env-1"
    assert passwords.source(layout, comp, "keystore") == "env:SSL_PASSWORD"


@pytest.mark.parametrize("bad, why", [("abc", "at least 6"), ("pässwörd€x", "printable ASCII")])
def test_rules(comp: config.Component, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               bad: str, why: str) -> None:
    monkeypatch.setenv("SSL_PASSWORD", bad)
    with pytest.raises(PasswordError, match=why):
        passwords.get(fs.Layout(tmp_path), comp, "keystore", create=True)
