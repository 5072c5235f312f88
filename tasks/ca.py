"""The CA stages: ``ca_image`` (docker backend), ``ca`` (reuse or first-time create) and
``new_ca`` (replace the CA on purpose). The CA is never regenerated implicitly."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import common
from .adapters import fs
from .config import Config
from .errors import CaError
from .pki import keys, names, signer, stores

# Relative to the project (doit runs in dodo.py's folder), so a moved checkout stays up to date.
CONTEXT = Path(os.path.relpath(Path(__file__).resolve().parent.parent / "config" / "ca"))
_backend_cache: dict[str, str] = {}


def backend(cfg: Config) -> str:
    """The backend that holds (or will hold) the CA: the recorded one wins over ``auto``."""
    key = str(cfg.output)
    if key not in _backend_cache:
        recorded = fs.read_word(fs.Layout(cfg.output).ca_backend)
        if cfg.backend != "auto":
            _backend_cache[key] = cfg.backend
        elif recorded:
            _backend_cache[key] = recorded
        else:
            from .adapters import docker
            _backend_cache[key] = "docker" if docker.engine_answers() else "local"
    return _backend_cache[key]


def note(message: str) -> None:
    """A line for the operator: on stderr, which doit shows at its default verbosity."""
    print(message, file=sys.stderr)


def why(cfg: Config) -> str:
    """How the backend was chosen, for the operator."""
    chosen = backend(cfg)
    if cfg.backend != "auto":
        return f"{chosen} (settings.ca_backend / PKI_CA_BACKEND)"
    if fs.read_word(fs.Layout(cfg.output).ca_backend):
        return f"{chosen} (auto: the existing CA's backend)"
    return chosen + (" (auto: a Docker engine answered)" if chosen == "docker"
                     else " (auto: no Docker engine answered)")



def _check_switch(cfg: Config, layout: fs.Layout, chosen: str) -> None:
    recorded = fs.read_word(layout.ca_backend)
    if recorded and recorded != chosen:
        raise CaError(f"the CA in {layout.ca_dir} is held by the {recorded} backend but "
                      f"{chosen} was chosen; two CAs are never mixed (set PKI_CA_BACKEND="
                      f"{recorded}, or run `doit new_ca` to start a new {chosen} CA on purpose)")


def _issued(layout: fs.Layout) -> list[Path]:
    return sorted((layout.root / "components").glob("*/cert.pem"))


def _refuse_silent_new_ca(layout: fs.Layout, missing: str) -> None:
    issued = _issued(layout)
    if issued:
        raise CaError(f"{missing} is missing but {len(issued)} certificates issued by that CA "
                      f"exist under {layout.root / 'components'}; a new CA is never created "
                      "silently (restore it from backup, or run `doit new_ca`)")


def local_ca_ok(cfg: Config) -> bool:
    layout = common.layout(cfg)
    cert, key = common.load_cert(layout.ca_cert), fs.read(layout.ca_key)
    recorded = fs.read_word(layout.ca_backend)
    if cert is None or key is None or recorded != "local":
        return False
    try:
        return keys.public_der(keys.load_pem(key)) == keys.public_der(cert.public_key())
    except ValueError:
        return False


def ensure_local_ca(cfg: Config, create: bool = False) -> None:
    """Reuse the CA in output/ca; create it only when there has never been one."""
    layout = common.layout(cfg)
    _check_switch(cfg, layout, "local")
    cert_data, key_data = fs.read(layout.ca_cert), fs.read(layout.ca_key)
    note(f"ca: CA backend {why(cfg)}; files in {layout.ca_dir}")
    if cert_data is None and key_data is None:
        if not create:
            _refuse_silent_new_ca(layout, str(layout.ca_cert))
        key = keys.generate(cfg.ca.key)
        cert = signer.create_ca(names.parse_subject(cfg.ca.subject), key, cfg.ca.validity_days,
                                common.now())
        fs.write(layout.ca_key, keys.to_pem(key), secret=True)
        fs.write(layout.ca_cert, stores.pem(cert), secret=False)
        note(f"ca: created a new local CA {cfg.ca.subject!r} in {layout.ca_dir}")
    else:
        for path, data in ((layout.ca_cert, cert_data), (layout.ca_key, key_data)):
            if data is None:
                raise CaError(f"{path} is missing or unreadable while the rest of the CA exists; "
                              "the CA is never regenerated implicitly (restore it from backup, "
                              "or run `doit new_ca`)")
        load_local_signer(layout)
    fs.write_word(layout.ca_backend, "local")


def load_local_signer(layout: fs.Layout) -> signer.LocalSigner:
    try:
        cert = common.load_cert(layout.ca_cert)
        if cert is None:
            raise ValueError("not a PEM certificate")
        key = keys.load_pem(fs.read(layout.ca_key) or b"")
    except ValueError as exc:
        raise CaError(f"{layout.ca_dir}: cannot read the CA: {exc} (restore it from backup, "
                      "or run `doit new_ca`)") from None
    if keys.public_der(key) != keys.public_der(cert.public_key()):
        raise CaError(f"{layout.ca_key} does not belong to {layout.ca_cert} (restore the pair, "
                      "or run `doit new_ca`)")
    return signer.LocalSigner(key, cert)


def docker_ca_ok(cfg: Config) -> bool:
    from .adapters import docker
    layout = common.layout(cfg)
    image_id = fs.read_word(layout.ca_image_id)
    recorded = fs.read_word(layout.ca_backend)
    if not image_id or recorded != "docker" or common.load_cert(layout.ca_cert) is None:
        return False
    recorded_id = fs.read_word(layout.ca_container_id)
    try:
        # The very container this output folder last checked: one recreated by someone else
        # (another project with the same names) makes `ca` compare the CA certificates again.
        return docker.current_ca_id(docker.connect(), cfg.ca, image_id) == recorded_id
    except Exception:  # noqa: BLE001 - any engine trouble means "run the action", which reports it
        return False


def ensure_docker_ca(cfg: Config, create: bool = False) -> None:
    """Start the CA container from the current image; create the CA inside only the first time."""
    from .adapters import docker
    layout = common.layout(cfg)
    _check_switch(cfg, layout, "docker")
    if not cfg.ca.key.is_rsa and fs.read(layout.ca_cert) is None:
        raise CaError(f"the docker CA only makes RSA keys, not {cfg.ca.key} (set ca.key to "
                      "rsa:<bits>, or use the local backend)")
    image_id = fs.read_word(layout.ca_image_id)
    existing = fs.read(layout.ca_cert)
    allow = create or (existing is None and not _issued(layout))
    client = docker.connect()
    # Look into the volume before the container is (re)started: a CA this output folder did not
    # make (another project with the same names) is neither adopted silently nor disturbed.
    in_volume = docker.volume_ca_cert(client, cfg.ca, image_id)
    if in_volume is not None and existing is not None and in_volume.strip() != existing.strip():
        raise CaError(f"the CA in volume {cfg.ca.volume} is not the CA in {layout.ca_cert}; two "
                      "CAs are never mixed and that volume is left alone (restore the volume, "
                      "set ca.container / ca.volume to this project's names, or run `doit "
                      "new_ca`)")
    if in_volume is not None and existing is None and not create and not os.environ.get(
            "PKI_CA_ADOPT"):
        raise CaError(f"volume {cfg.ca.volume} already holds a CA that this output folder did "
                      f"not create ({_describe(in_volume)}); to use it (output/ was deleted) "
                      "run with PKI_CA_ADOPT=1, else set ca.container / ca.volume to names of "
                      "your own")
    note(f"ca: CA backend {why(cfg)}; container {cfg.ca.container}, volume {cfg.ca.volume}")
    pem = docker.ensure_ca(client, cfg.ca, image_id, allow_create=allow)
    if existing is not None and existing != pem:
        raise CaError(f"the CA in container {cfg.ca.container} (volume {cfg.ca.volume}) is not "
                      f"the CA in {layout.ca_cert}; two CAs are never mixed (restore the volume, "
                      "or run `doit new_ca`)")
    if existing is None:
        what = "adopted the CA already in" if in_volume is not None else "created a new CA in"
        note(f"ca: {what} volume {cfg.ca.volume}: {_describe(pem)}")
    fs.write(layout.ca_cert, pem, secret=False)
    fs.write_word(layout.ca_backend, "docker")
    fs.write_word(layout.ca_container_id, docker.current_ca_id(client, cfg.ca, image_id) or "")


def _describe(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    cert = x509.load_pem_x509_certificate(pem)
    return f"{cert.subject.rfc4514_string()}, SHA-256 {cert.fingerprint(hashes.SHA256()).hex()}"




def _build(cfg: Config) -> tuple[str, str]:
    """Build the CA image; its id and its base image's id."""
    from .adapters import docker
    client = docker.connect()
    image_id = docker.build_ca_image(client, CONTEXT, cfg.ca.image, cfg.ca.base_image)
    return image_id, docker.image_id(client, cfg.ca.base_image) or ""


def _record_image(layout: fs.Layout, ids: tuple[str, str]) -> None:
    fs.write_word(layout.ca_base_id, ids[1])
    fs.write_word(layout.ca_image_id, ids[0])


def build_image(cfg: Config) -> None:
    _record_image(common.layout(cfg), _build(cfg))


def image_ok(cfg: Config) -> bool:
    """The CA image still exists and its base is the image it was built from (a base image
    re-loaded under the same tag rebuilds the CA image)."""
    from .adapters import docker
    layout = common.layout(cfg)
    built = fs.read_word(layout.ca_image_id)
    base = fs.read_word(layout.ca_base_id)
    try:
        client = docker.connect()
        return bool(built) and docker.image_id(client, built) == built and bool(base) and (
            docker.image_id(client, cfg.ca.base_image) == base)
    except Exception:  # noqa: BLE001 - any engine trouble means "run the action", which reports it
        return False


def new_ca(cfg: Config) -> None:
    """Retire the current CA and create a new one. Everything that can fail (engine, base
    image, key type) is checked before the old CA is touched; the old CA is kept, in
    output/ca.retired-<time> (local) or the volume <volume>.retired-<time> (docker)."""
    layout = common.layout(cfg)
    recorded = fs.read_word(layout.ca_backend)
    chosen = cfg.backend if cfg.backend != "auto" else recorded or backend(cfg)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    ids = None
    if chosen == "docker":
        if not cfg.ca.key.is_rsa:
            raise CaError(f"the docker CA only makes RSA keys, not {cfg.ca.key} (set ca.key)")
        ids = _build(cfg)
    if recorded == "docker" or chosen == "docker":
        from .adapters import docker
        client = docker.connect()
        if recorded == "docker":
            image = ids[0] if ids else fs.read_word(layout.ca_image_id)
            retired = docker.retire_ca(client, cfg.ca, image, fs.read(layout.ca_cert), stamp)
            if retired:
                note(f"new_ca: the old CA is kept in volume {retired}")
        elif docker.ca_exists(client, cfg.ca):
            raise CaError(f"container {cfg.ca.container} or volume {cfg.ca.volume} exists but "
                          "this output folder's CA is not in it; it is left alone (set "
                          "ca.container / ca.volume to other names, or remove them yourself)")
    if layout.ca_dir.exists():
        retired_dir = layout.root / f"ca.retired-{stamp}"
        layout.ca_dir.rename(retired_dir)
        note(f"new_ca: the old CA files are kept in {retired_dir}")
    if ids is not None:
        _record_image(layout, ids)
        # Claimed before it exists: a new_ca interrupted from here on is finished by new_ca.
        fs.write_word(layout.ca_backend, "docker")
        ensure_docker_ca(cfg, create=True)
    else:
        ensure_local_ca(cfg, create=True)
    note(f"new_ca: created a new {chosen} CA; `doit` now re-signs every certificate")


def tasks(cfg: Config) -> Iterator[dict[str, Any]]:
    layout = common.layout(cfg)
    chosen = backend(cfg)
    if chosen == "docker":
        context = sorted(p for p in CONTEXT.rglob("*") if p.is_file())
        yield {
            "basename": "ca_image",
            "doc": "build the CA image from config/ca (docker backend)",
            "actions": [common.action("ca_image", None, build_image, cfg)],
            "file_dep": context, "targets": [layout.ca_image_id],
            "uptodate": [_config(cfg, "base_image", "image"), (image_ok, [cfg])],
        }
    yield {
        "basename": "ca",
        "doc": f"reuse the {chosen} CA, or create it the first time (never implicitly again)",
        "actions": [common.action("ca", None, ensure_docker_ca if chosen == "docker"
                                  else ensure_local_ca, cfg)],
        "file_dep": [layout.ca_image_id] if chosen == "docker" else [],
        "targets": [layout.ca_cert, layout.ca_backend],
        "uptodate": [_config(cfg, "container", "volume", "image"),
                     (docker_ca_ok if chosen == "docker" else local_ca_ok, [cfg])],
    }
    yield {
        "basename": "new_ca",
        "doc": "replace the CA on purpose (the old one is retired); then `doit` re-signs all",
        "actions": [common.action("new_ca", None, new_ca, cfg)],
        "uptodate": [False],
    }


def _config(cfg: Config, *fields: str) -> Any:
    from doit.tools import config_changed
    return config_changed({f: getattr(cfg.ca, f) for f in fields})
