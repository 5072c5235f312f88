"""The Docker engine: build the CA image, run the CA container and sign CSRs inside it."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import docker
from docker import DockerClient
from docker.errors import APIError as APIError  # re-exported for adapters/containers.py
from docker.errors import DockerException, ImageNotFound, NotFound

from ..config import CaConfig
from ..errors import CaError, EngineError
from ..pki import names

CA_SH = "/usr/local/bin/ca.sh"
CA_DIR = "/ca"
LABEL = "i2-pki.role"
LABELS = {LABEL: "ca"}
NO_CA = 3  # ca.sh cacert's exit status when the volume holds no CA
DEFAULT_URL = "unix:///var/run/docker.sock"
SLOW_TIMEOUT = 900  # seconds for a build (apt-get) or an RSA CA key to be made


def one_line(exc: BaseException | str) -> str:
    """A message on one line, shortened; an exception without text gives its type's name."""
    text = " ".join(str(exc).split())[:300]
    return text or ("" if isinstance(exc, str) else type(exc).__name__)


_clients: dict[tuple[int, str], DockerClient] = {}


def connect(base_url: str | None = None, timeout: float = 10) -> DockerClient:
    """A client for ``base_url`` (default: DOCKER_HOST) that has answered a ping; one per engine
    and process, so that up-to-date checks do not pay a version call and a ping each (``timeout``
    bounds the first ping; requests then wait 10 s, longer ones set their own)."""
    url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_URL
    key = (os.getpid(), url)  # a forked `doit -n` worker opens its own connections
    if key in _clients:
        return _clients[key]
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise EngineError(f"no Docker engine answers at {url}: {one_line(exc)} "
                          "(start one, or set DOCKER_HOST / PKI_CA_BACKEND=local)") from None
    client.api.timeout = 10
    _clients[key] = client
    return client


def engine_answers() -> bool:
    """Whether an engine answers a ping within a few seconds; never raises."""
    try:
        connect(timeout=3)
        return True
    except Exception:  # noqa: BLE001 - any failure means "no"
        return False


def context_tar(context: Path) -> bytes:
    """The build context as an in-memory tar with fixed owners and times, so builds cache."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(context).as_posix())
            info.size = len(data)
            info.mode = 0o755 if path.suffix == ".sh" else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_ca_image(client: DockerClient, context: Path, tag: str, base_image: str) -> str:
    """Build the CA image from ``context`` on ``base_image`` (never pulled); return its id."""
    try:
        client.images.get(base_image)
    except ImageNotFound:
        raise EngineError(
            f"the base image {base_image} is not in the engine and is never pulled "
            f"(docker pull or docker load -i <file> it, or set ca.base_image / "
            f"PKI_CA_BASE_IMAGE to an image the engine has)") from None
    except DockerException as exc:
        raise EngineError(f"cannot inspect {base_image}: {one_line(exc)}") from None
    last = "no output"
    try:
        for chunk in client.api.build(
                fileobj=io.BytesIO(context_tar(context)), custom_context=True, tag=tag,
                buildargs={"BASE_IMAGE": base_image}, pull=False, rm=True, forcerm=True,
                labels={LABEL: "ca-image"}, decode=True, timeout=SLOW_TIMEOUT):
            if "error" in chunk:
                raise EngineError(f"building {tag} failed: {one_line(chunk['error'])}")
            text = str(chunk.get("stream", "")).strip()
            last = text.splitlines()[-1] if text else last
        return str(client.images.get(tag).id)
    except DockerException as exc:
        raise EngineError(f"building {tag} failed: {one_line(exc)} "
                          f"(last build line: {one_line(last)})") from None


def image_id(client: DockerClient, ref: str) -> str | None:
    """The id of an image the engine has, or None."""
    try:
        return str(client.api.inspect_image(ref)["Id"])
    except NotFound:
        return None


def _is_current(attrs: dict[str, Any], ca: CaConfig, image_id: str) -> bool:
    """Running, from ``image_id``, with the configured volume at /ca."""
    mounts = {(m.get("Name"), m.get("Destination")) for m in attrs.get("Mounts", [])}
    image = str(attrs.get("Image", "")).removeprefix("sha256:")
    return (attrs.get("State", {}).get("Running") is True
            and image == image_id.removeprefix("sha256:")
            and (ca.volume, CA_DIR) in mounts)


def ca_running(client: DockerClient, ca: CaConfig, image_id: str) -> bool:
    """One inspect call: the CA container exists, runs, and runs ``image_id``."""
    return current_ca_id(client, ca, image_id) is not None


def current_ca_id(client: DockerClient, ca: CaConfig, image_id: str) -> str | None:
    """One inspect call: the id of the CA container if it runs ``image_id``, else None."""
    try:
        attrs = client.api.inspect_container(ca.container)
    except NotFound:
        return None
    return str(attrs["Id"]) if _is_current(attrs, ca, image_id) else None


def _check_ours(attrs: dict[str, Any], name: str) -> None:
    labels = attrs.get("Config", {}).get("Labels") or {}
    if labels.get(LABEL) != LABELS[LABEL]:
        raise EngineError(f"container {name} exists but was not made by i2-pki; it is left "
                          "alone (remove it, or set ca.container to another name)")


def _start_container(client: DockerClient, ca: CaConfig, image_id: str,
                     allow_create: bool) -> Any:
    """Recreate the CA container unless it already runs ``image_id``; return it."""
    try:
        attrs = client.api.inspect_container(ca.container)
    except NotFound:
        attrs = None
    if attrs is not None:
        _check_ours(attrs, ca.container)
        if _is_current(attrs, ca, image_id):
            return client.containers.get(ca.container)
        client.api.remove_container(ca.container, force=True)
    try:
        client.volumes.get(ca.volume)
    except NotFound:
        if not allow_create:
            raise _no_ca(ca) from None
        client.volumes.create(ca.volume, labels=LABELS)
    # No network: the CA only answers `docker exec`; its key never leaves the volume.
    return client.containers.run(
        image_id, name=ca.container, detach=True, network_mode="none", labels=LABELS,
        volumes={ca.volume: {"bind": CA_DIR, "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"})


def _exec(container: Any, *args: str, slow: bool = False) -> tuple[int, bytes, bytes]:
    """Run ca.sh in the container: exit code, stdout, stderr."""
    api = container.client.api
    saved = api.timeout
    api.timeout = max(saved, SLOW_TIMEOUT) if slow else saved  # read per request by docker-py
    try:
        result = container.exec_run(["/bin/sh", CA_SH, *args], demux=True)
    finally:
        api.timeout = saved
    out, err = result.output if result.output else (b"", b"")
    return int(result.exit_code), out or b"", err or b""


def _failure(container: Any, what: str, err: bytes) -> CaError:
    lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
    return CaError(f"{what} in container {container.name} failed: {one_line(lines[-1])}")


def _no_ca(ca: CaConfig) -> CaError:
    return CaError(f"the CA volume {ca.volume} holds no CA but certificates were issued by one; "
                   "a new CA is never created silently (restore the volume from backup, or run "
                   "`doit new_ca` to create a new CA on purpose)")


def ensure_ca(client: DockerClient, ca: CaConfig, image_id: str, allow_create: bool) -> bytes:
    """Run the CA container from ``image_id``; create the CA only if allowed; return its PEM."""
    try:
        container = _start_container(client, ca, image_id, allow_create)
        code, out, err = _exec(container, "cacert")
        if code == NO_CA:
            if not allow_create:
                raise _no_ca(ca)
            if not ca.key.is_rsa:
                raise CaError(f"the docker CA only makes RSA keys, not {ca.key} "
                              "(set ca.key to rsa:<bits>)")
            subject = names.openssl_subject(names.parse_subject(ca.subject))
            code, _, err = _exec(container, "init", subject, ca.key.param,
                                 str(ca.validity_days), slow=True)
            if code != 0:
                raise _failure(container, "creating the CA", err)
            code, out, err = _exec(container, "cacert")
        if code != 0 or b"-----BEGIN CERTIFICATE-----" not in out:
            raise _failure(container, "reading the CA certificate", err)
        return out
    except DockerException as exc:
        raise EngineError(f"container {ca.container}: {one_line(exc)}") from None


def volume_ca_cert(client: DockerClient, ca: CaConfig, image_id: str) -> bytes | None:
    """The CA certificate in the CA volume, read by a throwaway container (read-only mount, no
    network) without touching the CA container; None when there is no volume or no CA in it."""
    try:
        client.api.inspect_volume(ca.volume)
    except NotFound:
        return None
    try:
        reader = client.containers.run(
            image_id, entrypoint=["/bin/sh", "-c", "cat /ca/ca.crt 2>/dev/null; exit 0"],
            volumes={ca.volume: {"bind": CA_DIR, "mode": "ro"}}, network_mode="none",
            detach=True, labels={LABEL: "read"})
        reader.wait(timeout=SLOW_TIMEOUT)
        pem = reader.logs(stdout=True, stderr=False)
        reader.remove(v=True, force=True)
    except DockerException as exc:
        raise EngineError(f"reading the CA volume {ca.volume}: {one_line(exc)}") from None
    return pem if b"-----BEGIN CERTIFICATE-----" in pem else None


def ca_exists(client: DockerClient, ca: CaConfig) -> bool:
    """The CA container or the CA volume exists on this engine."""
    for inspect, name in ((client.api.inspect_container, ca.container),
                          (client.api.inspect_volume, ca.volume)):
        with contextlib.suppress(NotFound):
            inspect(name)
            return True
    return False


def retire_ca(client: DockerClient, ca: CaConfig, image_id: str, expected_pem: bytes | None,
              stamp: str) -> str | None:
    """Copy the CA volume to ``<volume>.retired-<stamp>`` (the old key stays inside Docker), then
    remove the CA container and volume. Refuses a volume whose CA is not ``expected_pem``."""
    try:
        try:
            client.api.inspect_volume(ca.volume)
        except NotFound:
            with contextlib.suppress(NotFound):
                _check_ours(client.api.inspect_container(ca.container), ca.container)
                client.api.remove_container(ca.container, force=True)
            return None
        retired = f"{ca.volume}.retired-{stamp}"
        client.volumes.create(retired, labels={LABEL: "retired-ca"})
        helper = client.containers.run(
            image_id, entrypoint=["/bin/sh", "-c", "cp -a /ca/. /retired/ || exit 1; "
                                                   "cat /ca/ca.crt 2>/dev/null; exit 0"],
            volumes={ca.volume: {"bind": CA_DIR, "mode": "ro"},
                     retired: {"bind": "/retired", "mode": "rw"}},
            network_mode="none", detach=True, labels={LABEL: "retire"})
        code = helper.wait(timeout=SLOW_TIMEOUT).get("StatusCode")
        shown = helper.logs(stdout=True, stderr=False)
        helper.remove(v=True, force=True)
        if code != 0 or (expected_pem is not None and shown.strip() != expected_pem.strip()):
            client.api.remove_volume(retired, force=True)
            raise CaError(f"volume {ca.volume} does not hold the CA of this output folder; it is "
                          "left alone (set ca.volume / ca.container to other names, or remove "
                          "it yourself)")
        with contextlib.suppress(NotFound):
            _check_ours(client.api.inspect_container(ca.container), ca.container)
            client.api.remove_container(ca.container, force=True)
        client.api.remove_volume(ca.volume, force=True)
        return retired
    except DockerException as exc:
        raise EngineError(f"retiring {ca.container} / {ca.volume}: {one_line(exc)}") from None


def remove_ca(client: DockerClient, ca: CaConfig) -> None:
    """Remove the CA container and its volume: the CA is gone for good (an explicit new CA)."""
    try:
        with contextlib.suppress(NotFound):
            _check_ours(client.api.inspect_container(ca.container), ca.container)
            client.api.remove_container(ca.container, force=True)
        with contextlib.suppress(NotFound):
            client.api.remove_volume(ca.volume, force=True)
    except DockerException as exc:
        raise EngineError(f"removing {ca.container} / {ca.volume}: {one_line(exc)}") from None
