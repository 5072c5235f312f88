"""The task graph as doit sees it, without running it."""

from __future__ import annotations

from pathlib import Path

from tasks import config, deploy, stores

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "deployment.toml"


def test_deploy_copies_only_verified_stores() -> None:
    cfg = config.load(EXAMPLE)
    layout = deploy.common.layout(cfg)
    for task in deploy.tasks(cfg):
        name = task["name"]
        assert layout.verified(name) in task["file_dep"]  # verify's mark, removed on failure
        assert set(stores.targets(layout, cfg.components[name])) <= set(task["file_dep"]) | {
            layout.pem_extras(name)["ca"]}
