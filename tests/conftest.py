"""Shared fixtures: a real Docker engine and a FROM-scratch base image for the docker tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests import dockerlib

# --- Docker fixtures --------------------------------------------------------------------------
# A test that takes docker_client (directly or through base_image) is a docker test. Without an
# engine it is skipped, unless PKI_REQUIRE_DOCKER=1 (CI), where any skipped docker test fails.


def docker_required() -> bool:
    return os.environ.get("PKI_REQUIRE_DOCKER") == "1"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client for the engine at DOCKER_HOST that has answered a ping."""
    from tasks.adapters import docker as adapter
    from tasks.errors import EngineError

    try:
        client = adapter.connect()
    except EngineError as exc:
        if docker_required():
            pytest.fail(f"PKI_REQUIRE_DOCKER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> Iterator[str]:
    """A FROM-scratch image of host busybox (sh) and host openssl; no registry needed."""
    tag = dockerlib.build_base_image(docker_client, dockerlib.unique("pki-test-base") + ":latest")
    yield tag
    dockerlib.remove_image(docker_client, tag)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (report.skipped and docker_required() and not hasattr(report, "wasxfail")
            and item.get_closest_marker("docker")):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"docker test skipped although PKI_REQUIRE_DOCKER=1: {reason}"

# --- end of Docker fixtures -------------------------------------------------------------------
