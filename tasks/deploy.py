"""The ``deploy`` stage: copy each component's stores and the CA certificate into its target
containers, on one or many Docker engines, and read them back."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from . import common
from .adapters import fs
from .config import Component, Config
from .errors import EngineError, PkiError
from .targets import Target

_engines: dict[str, dict[str, str] | None] = {}
_told: set[str] = set()  # engines already reported as down in this process


def artefacts(layout: fs.Layout, comp: Component) -> list[tuple[str, Path, str]]:
    """(artefact, source file, default file name) that go to every target of the component."""
    out = [("ca", layout.ca_cert, "ca.crt.pem")]
    if comp.keystore == "pem":
        extras = layout.pem_extras(comp.name)
        out += [("key", layout.key(comp.name), "key.pem"), ("cert", layout.cert(comp.name),
                "cert.pem"), ("chain", extras["chain"], "chain.pem"),
                ("fullchain", extras["fullchain"], "fullchain.pem")]
    elif comp.keystore != "none":
        path = layout.store(comp.name, "keystore", comp.keystore)
        out.append(("keystore", path, path.name))
    if comp.truststore not in ("pem", "none"):
        path = layout.store(comp.name, "truststore", comp.truststore)
        out.append(("truststore", path, path.name))
    return out


def state_file(layout: fs.Layout, name: str) -> Path:
    return layout.root / "deploy" / f"{name}.json"


def _client(engine: str) -> Any:
    from .adapters import docker
    return docker.connect(None if engine == "default" else engine)


def containers(engine: str) -> dict[str, str] | None:
    """name → id on an engine, one API call per engine per process; None when it is down."""
    if engine not in _engines:
        from .adapters import containers as copier
        try:
            _engines[engine] = copier.containers_by_name(_client(engine))
        except EngineError:
            _engines[engine] = None
    return _engines[engine]


def deploy_ok(cfg: Config, name: str) -> bool:
    """Every target holds what was deployed to that very container (same id). Set
    PKI_DEPLOY_VERIFY=1 to also read every file back (an API call per target)."""
    state = json.loads(fs.read(state_file(common.layout(cfg), name)) or b"{}")
    for target in cfg.components[name].deploy:
        found = containers(target.engine)
        cid = None if found is None else found.get(target.container)
        recorded = state.get(target.key)
        if recorded is None or (cid is None and target.required):
            return False
        if cid is not None and cid != recorded.get("container_id"):
            return False  # recreated, or an optional container appeared
        if cid is not None and os.environ.get("PKI_DEPLOY_VERIFY") and not _matches(
                target, cid, recorded["files"]):
            return False
    return True


def _matches(target: Target, cid: str, files: dict[str, list[Any]]) -> bool:
    from .adapters import containers as copier
    got = copier.read_files(_client(target.engine), cid, target.path, list(files))
    return all(tuple(got.get(n, ())) == tuple(v) for n, v in files.items())


def _copy(target: Target, cid: str, payload: list[tuple[str, bytes, int]]) -> tuple[dict, str]:
    from .adapters import containers as copier
    client = _client(target.engine)
    how = copier.put_files(client, cid, target.path, payload, target.uid, target.gid)
    want = {n: [hashlib.sha256(d).hexdigest(), target.uid, target.gid, m] for n, d, m in payload}
    got = copier.read_files(client, cid, target.path, list(want))
    for n, expected in want.items():
        if list(got.get(n, ())) != expected:
            raise EngineError(f"{target.container}:{target.path}/{n} reads back as "
                              f"{got.get(n)}, expected {expected}")
    return want, how


def _remove(target: Target, cid: str, names: list[str]) -> bool:
    """Files deployed before that are no longer part of the component (a changed store type)."""
    from .adapters import containers as copier
    return copier.remove_files(_client(target.engine), cid, target.path, names)


def deploy(cfg: Config, name: str) -> None:
    comp = cfg.components[name]
    layout = common.layout(cfg)
    sources = artefacts(layout, comp)
    state: dict[str, Any] = {}
    before = json.loads(fs.read(state_file(layout, name)) or b"{}")
    summary = []
    for target in comp.deploy:
        url = target.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        where = f"container {target.container} on engine {url}"
        found = containers(target.engine)
        cid = None if found is None else found.get(target.container)
        if cid is None:
            why = "no engine answers" if found is None else "no such container"
            if target.required:
                raise PkiError(f"{where}: {why} (start it, or set required = false)")
            state[target.key] = {"container_id": None, "files": {}}
            if found is None and url in _told:
                continue
            if found is None:
                _told.add(url)
                summary.append(f"no Docker engine answers at {url}; optional targets skipped "
                               "(they get their stores once their containers exist)")
            else:
                summary.append(f"{target.container}: skipped ({why}, optional)")
            continue
        payload = [(target.name_of(art, default), fs.read(src) or b"", target.mode_of(art))
                   for art, src, default in sources]
        files, how = _copy(target, cid, payload)
        state[target.key] = {"container_id": cid, "files": files}
        summary.append(f"{target.container}:{target.path} {len(files)} files ({how})")
        old = before.get(target.key, {})
        stale = sorted(set(old.get("files", {})) - set(files)) if old.get(
            "container_id") == cid else []
        if stale and not _remove(target, cid, stale):
            summary.append(f"left behind in {target.container}:{target.path}: "
                           f"{', '.join(stale)} (no shell there to remove them; remove by hand)")
    fs.write(state_file(layout, name), json.dumps(state, indent=1).encode(), secret=True)
    if summary:
        print(f"deploy {name}: " + "; ".join(summary))


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    """copy a component's stores and the CA certificate into its containers"""
    layout = common.layout(cfg)
    for comp in cfg.components.values():
        if not comp.deploy:
            continue
        yield {
            "name": comp.name,
            "doc": "copy {}'s stores into {}".format(
                comp.name, ", ".join(t.container for t in comp.deploy)),
            "actions": [common.action("deploy", comp.name, deploy, cfg, comp.name)],
            # verified.txt: only stores that passed verify are ever copied into a container
            "file_dep": [src for _, src, _ in artefacts(layout, comp)]
            + [layout.verified(comp.name)],
            "targets": [state_file(layout, comp.name)],
            "uptodate": [config_changed({"targets": [repr(t) for t in comp.deploy]}),
                         (deploy_ok, [cfg, comp.name])],
            "verbosity": 2,
        }
