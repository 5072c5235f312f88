"""A second, private Docker engine for multi-engine tests: started and stopped by its pid file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker


class PrivateEngine:
    """dockerd with its own socket, data root, exec root and pid file; loopback-only containers
    (--bridge=none --iptables=false): no bridge network, no traffic off the machine."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pkie.", dir="/tmp"))
        self.socket = self.dir / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.pidfile = self.dir / "pid"
        self.log = self.dir / "dockerd.log"

    def start(self, timeout: float = 60) -> docker.DockerClient:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        with open(self.log, "wb") as log:
            subprocess.Popen(
                [dockerd, "--host", self.url, "--data-root", str(self.dir / "data"),
                 "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.pidfile),
                 "--bridge=none", "--iptables=false", "--ip-masq=false"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client = docker.DockerClient(base_url=self.url, timeout=10)
                client.ping()
                return client
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the second dockerd did not answer in {timeout} s: "
                           f"{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            pid = None
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(60):
                    os.kill(pid, 0)
                    time.sleep(0.5)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["umount", "-R", str(self.dir / "data")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
