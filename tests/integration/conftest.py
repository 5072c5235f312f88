"""Fixtures shared by the real-tool tests: the example deployment, built once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import realtools as rt


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built once with SSL_PASSWORD=changeit1 and the local CA."""
    return rt.build_example(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def ca_pem(out: Path) -> Path:
    return out / "ca" / "ca.crt.pem"
