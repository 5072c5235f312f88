"""Signing through the CA container: one ``ca.sh serve`` session per process behind one
``docker exec``, speaking the protocol of tasks/pki/ca_protocol.py."""

from __future__ import annotations

import os
import re
import socket
import struct
import threading

from ..errors import CaError
from ..pki import profiles
from ..pki.ca_protocol import sign_request
from .docker import CA_SH, DockerClient, DockerException, one_line

SIGN_TIMEOUT = 120.0  # seconds for one answer: waits for the other sessions' lock too
# OpenSSL 3 error lines: <thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>
_OPENSSL_ERROR = re.compile(r"^[0-9A-F]+:error:[0-9A-F]+:([^:]*):[^:]*:([^:]*):[^:]*:\d*:?(.*)$")


def _openssl_reason(line: str) -> str:
    """``reason (library): data`` from an OpenSSL 3 error line; other lines as they are."""
    match = _OPENSSL_ERROR.match(line.strip())
    if not match:
        return one_line(line)
    library, reason, data = (g.strip() for g in match.groups())
    return one_line(f"{reason} ({library})" + (f": {data}" if data else ""))


class _Session:
    """One ``ca.sh serve`` process behind one exec: write requests, read stdout lines."""

    def __init__(self, client: DockerClient, container: str) -> None:
        exec_id = client.api.exec_create(container, ["/bin/sh", CA_SH, "serve"], stdin=True,
                                         stdout=True, stderr=True)["Id"]
        self._io = client.api.exec_start(exec_id, socket=True)
        self._sock: socket.socket = getattr(self._io, "_sock", self._io)
        self._sock.settimeout(SIGN_TIMEOUT)
        self._frames = b""
        self._stdout = b""
        self.stderr = b""

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def _fill(self) -> None:
        """Read one chunk and split Docker's 8-byte-header frames (docker.utils.socket)."""
        chunk = self._sock.recv(65536)
        if not chunk:
            raise EOFError
        self._frames += chunk
        while len(self._frames) >= 8:
            stream, size = struct.unpack(">BxxxL", self._frames[:8])
            if len(self._frames) < 8 + size:
                break
            payload, self._frames = self._frames[8:8 + size], self._frames[8 + size:]
            if stream == 2:
                self.stderr = (self.stderr + payload)[-4096:]
            else:
                self._stdout += payload

    def line(self) -> str:
        while b"\n" not in self._stdout:
            self._fill()
        line, self._stdout = self._stdout.split(b"\n", 1)
        return line.decode("ascii", errors="replace")

    def close(self) -> None:
        try:
            self.send(b"QUIT\n")
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._io.close()
            self._sock.close()


class DockerSigner:
    """Signs through ``ca.sh serve`` in the CA container, one exec session per process."""

    def __init__(self, client: DockerClient, container_name: str) -> None:
        self.client = client
        self.container = container_name
        self._session: _Session | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()  # one request at a time on the session

    def _open(self) -> _Session:
        if self._pid != os.getpid():  # a forked worker must not talk on its parent's socket
            self._session, self._pid = None, os.getpid()
        if self._session is None:
            try:
                self._session = _Session(self.client, self.container)
            except DockerException as exc:
                raise CaError(f"cannot open a signing session in container "
                              f"{self.container}: {one_line(exc)} (run `doit ca`)") from None
        return self._session

    def sign(self, csr_pem: bytes, request: profiles.IssueRequest) -> bytes:
        """Send one SIGN request and return the certificate PEM; CaError on ERR."""
        try:
            data = sign_request(csr_pem, request)
        except ValueError as exc:
            raise CaError(str(exc)) from None
        with self._lock:
            session = self._open()
            try:
                session.send(data)
                status = session.line()
                lines = []
                while status == "OK" and (line := session.line()) != "END":
                    lines.append(line)
            except (OSError, EOFError) as exc:
                why = one_line(session.stderr.decode(errors="replace")) or one_line(exc)
                self.close()
                raise CaError(f"the signing session in container {self.container} failed: "
                              f"{why}") from None
        if status.startswith("ERR"):
            raise CaError(f"the CA in container {self.container} refused the request: "
                          f"{_openssl_reason(status[3:])}")
        if status != "OK":
            self.close()
            raise CaError(f"unexpected answer from container {self.container}: "
                          f"{one_line(status)}")
        return ("\n".join(lines) + "\n").encode("ascii")

    def close(self) -> None:
        """End the session (the serve loop exits on QUIT or end of input)."""
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    def __enter__(self) -> DockerSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
