"""Time signing N CSRs through the CA container (one exec session) against the local signer.

Usage: DOCKER_HOST=unix:///path/docker.sock python3 bench/sign_bench.py [--base-image TAG]
       [--count 100] [--ca-key rsa:4096] [--leaf-key rsa:2048] [--rounds 3]

Without --base-image it builds the FROM-scratch test base image (host busybox + openssl) and
removes it afterwards. Everything it creates (images, container, volume) is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.adapters import docker as adapter  # noqa: E402
from tasks.adapters import signing  # noqa: E402
from tasks.config import CaConfig  # noqa: E402
from tasks.pki import ca_protocol, keys, names, profiles, signer  # noqa: E402
from tests import dockerlib  # noqa: E402

SUBJECT = "CN=i2CA, OU=i2, O=i2Group, L=Cambridge, ST=Cambridgeshire, C=GB"
PROFILE = profiles.Profile("server_client", ("digital_signature", "key_encipherment"),
                           ("server_auth", "client_auth"))
# The same `openssl ca` call as ca.sh's sign(), N times in one exec: signing without Docker.
RAW_LOOP = """
set -e
cd /tmp/bench
sh /usr/local/bin/ca.sh config > ca.cnf
mkdir -p out
i=0
while [ "$i" -lt "$1" ]; do
    read -r start end subject < "args$i"
    openssl ca -batch -config ca.cnf -notext -preserveDN -rand_serial -startdate "$start" \\
        -enddate "$end" -subj "$subject" -in "csr$i" -outdir out -extfile "ext$i" \\
        -extensions leaf >/dev/null 2>&1
    i=$((i + 1))
done
"""


def requests(count: int, leaf: keys.KeySpec) -> list[tuple[bytes, profiles.IssueRequest]]:
    """N CSRs with their requests, as the sign stage would make them (not timed)."""
    out = []
    for i in range(count):
        subject = f"CN=host{i}.eianet, O=i2Group, C=GB"
        ip = (f"10.0.{i // 250}.{i % 250}",)
        req = dockerlib.leaf_request(subject, PROFILE, (f"host{i}",), ip, rsa_key=leaf.is_rsa)
        csr = signer.build_csr(keys.generate(leaf), req.subject, [], [])
        out.append((csr, req))
    return out


def timed(action: Any, *args: Any) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def sign_all(ca: Any, work: list[tuple[bytes, profiles.IssueRequest]]) -> None:
    for csr, req in work:
        ca.sign(csr, req)


def bench_files(work: list[tuple[bytes, profiles.IssueRequest]]) -> bytes:
    """A tar for /tmp/bench: csr<i>, ext<i>, args<i> and the serve protocol stream ``requests``."""
    stream = b"".join(ca_protocol.sign_request(c, r) for c, r in work)
    files: dict[str, bytes] = {"requests": stream}
    for i, (csr, req) in enumerate(work):
        header = ca_protocol.sign_request(csr, req).split(b"\n", 1)[0]
        files[f"csr{i}"], files[f"args{i}"] = csr, header.split(b" ", 1)[1] + b"\n"
        files[f"ext{i}"] = profiles.openssl_extensions(req).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"bench/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def exec_ok(container: Any, cmd: list[str]) -> None:
    result = container.exec_run(cmd)
    if result.exit_code != 0:
        raise SystemExit(f"bench: {cmd[:3]} failed: {result.output.decode()[-300:]}")


def in_container(container: Any, count: int, bare: float) -> tuple[float, float]:
    """Per certificate: a raw `openssl ca` loop, and `ca.sh serve` fed from a file, each in one
    exec whose bare cost is subtracted."""
    raw = timed(exec_ok, container, ["sh", "-c", RAW_LOOP, "loop", str(count)]) - bare
    serve = ["sh", "-c", "sh /usr/local/bin/ca.sh serve < /tmp/bench/requests | grep -c ^OK"]
    served = timed(exec_ok, container, serve) - bare
    return raw / count, served / count


def rounds(client: Any, ca: CaConfig, local: signer.LocalSigner,
           work: list[tuple[bytes, profiles.IssueRequest]], n: int) -> dict[str, float]:
    """Median seconds per certificate of each way to sign, over n interleaved rounds."""
    container = client.containers.get(ca.container)
    container.put_archive("/tmp", bench_files(work))
    bare = min(timed(exec_ok, container, ["true"]) for _ in range(20))
    seen: dict[str, list[float]] = {"docker": [], "local": [], "raw": [], "serve": []}
    for _ in range(n):
        with signing.DockerSigner(client, ca.container) as remote:
            seen["docker"].append(timed(sign_all, remote, work) / len(work))
        seen["local"].append(timed(sign_all, local, work) / len(work))
        raw, served = in_container(container, len(work), bare)
        seen["raw"].append(raw)
        seen["serve"].append(served)
    return {"bare": bare} | {k: statistics.median(v) for k, v in seen.items()}


def report(rows: list[tuple[str, float, str]]) -> None:
    for label, seconds, note in rows:
        print(f"{label:<46} {seconds * 1000:9.2f} ms  {note}")


def run(client: Any, base_image: str, count: int, ca_key: keys.KeySpec, leaf: keys.KeySpec,
        n: int) -> None:
    tag = dockerlib.unique("pki-bench-ca") + ":latest"
    ca = CaConfig(SUBJECT, ca_key, 1095, "ca", tag, base_image,
                  dockerlib.unique("pki-bench-ca"), dockerlib.unique("pki-bench-vol"))
    try:
        image_id = adapter.build_ca_image(client, ROOT / "config" / "ca", tag, base_image)
        created = timed(adapter.ensure_ca, client, ca, image_id, True)
        work = requests(count, leaf)
        local_key = keys.generate(ca_key)
        local = signer.LocalSigner(local_key, signer.create_ca(
            names.parse_subject(SUBJECT), local_key, 1095, dt.datetime.now(dt.UTC)))
        t = rounds(client, ca, local, work, n)
        print(f"{count} CSRs ({leaf} leaves), CA {ca_key}, median of {n} rounds; "
              f"base image {base_image}")
        report([
            ("create the CA in the container (once)", created, ""),
            ("docker: per certificate", t["docker"], "one exec session, ca.sh serve"),
            ("docker: total", t["docker"] * count, ""),
            ("local: per certificate", t["local"], "LocalSigner, cryptography"),
            ("local: total", t["local"] * count, ""),
            ("bare `docker exec true` per call", t["bare"], "best of 20"),
            ("in container: raw openssl ca per cert", t["raw"], "one exec, minus one bare exec"),
            ("in container: ca.sh serve per cert", t["serve"], "from a file, minus one bare exec"),
            ("docker overhead per cert (vs raw openssl ca)", t["docker"] - t["raw"],
             "protocol, lock, records, transport"),
            ("  of which transport (vs in-container serve)", t["docker"] - t["serve"],
             "exec stream, Python"),
            ("one exec per cert would cost per cert", t["bare"] + t["raw"],
             "bare exec + raw openssl ca"),
        ])
    finally:
        adapter.remove_ca(client, ca)
        dockerlib.remove_image(client, tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", help="a local image with sh (default: build the "
                        "scratch test image)")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--ca-key", default="rsa:4096")
    parser.add_argument("--leaf-key", default="rsa:2048")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = adapter.connect()
    base = args.base_image or dockerlib.build_base_image(
        client, dockerlib.unique("pki-bench-base") + ":latest")
    try:
        run(client, base, args.count, keys.parse_spec(args.ca_key),
            keys.parse_spec(args.leaf_key), args.rounds)
    finally:
        if not args.base_image:
            dockerlib.remove_image(client, base)
        client.close()


if __name__ == "__main__":
    main()
