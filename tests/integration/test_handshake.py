"""Real mutual-TLS handshakes between components, with the stores and PEM files the example
build made: Python's ssl (OpenSSL) and Java's JSSE, on 127.0.0.1 only.

The example is built once for the module. Java reads store passwords from an environment
variable named on its command line, never from argv itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # tests/integration as a package, or as a rootdir-inserted folder
    from . import realtools as rt
except ImportError:
    import realtools as rt

LOOPBACK = "127.0.0.1"
PASSWORD = rt.PASSWORD


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> rt.OtherCa:
    return rt.make_other_ca(tmp_path_factory.mktemp("other-ca"))


def comp(out: Path, name: str) -> Path:
    return out / "components" / name


# --- Python ssl ----------------------------------------------------------------------------

@dataclass
class ServerResult:
    peer: dict | None = None
    got: bytes | None = None
    error: BaseException | None = None


def server_context(out: Path, ca_pem: Path, name: str, tmp: Path) -> ssl.SSLContext:
    """A server with the component's key and a chain built from cert.pem + the CA (a JKS
    component has no fullchain.pem), requiring a client certificate from the CA."""
    chain = tmp / f"{name}.chain.pem"
    chain.write_bytes((comp(out, name) / "cert.pem").read_bytes() + ca_pem.read_bytes())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(chain, comp(out, name) / "key.pem")
    ctx.load_verify_locations(cafile=ca_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def client_context(ca_pem: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_pem))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(cert, key)
    return ctx


def handshake(server: ssl.SSLContext, client: ssl.SSLContext,
              host: str) -> tuple[ServerResult, bytes | None, BaseException | None]:
    """One connection on 127.0.0.1: the client sends "ping", the server answers "pong"."""
    result = ServerResult()
    with socket.create_server((LOOPBACK, 0)) as listener:
        listener.settimeout(15)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(15)
                with server.wrap_socket(conn, server_side=True) as tls:
                    result.peer = tls.getpeercert()
                    result.got = tls.recv(64)
                    tls.sendall(b"pong " + result.got)
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                result.error = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        answer, error = None, None
        try:
            with socket.create_connection((LOOPBACK, port), timeout=15) as raw, \
                    client.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"ping")
                answer = tls.recv(64)
                if not answer:
                    raise ConnectionError("the server closed the connection")
        except (OSError, ssl.SSLError) as exc:
            error = exc
        thread.join(20)
        assert not thread.is_alive()
    return result, answer, error


def _cn(peer: dict) -> str:
    return next(v for rdn in peer["subject"] for k, v in rdn if k == "commonName")


def test_python_mutual_tls(out: Path, ca_pem: Path, tmp_path: Path) -> None:
    connector = comp(out, "connector")
    server = server_context(out, ca_pem, "liberty", tmp_path)
    client = client_context(ca_pem, connector / "fullchain.pem", connector / "key.pem")
    result, answer, error = handshake(server, client, "liberty.eianet")
    assert error is None and result.error is None, (error, result.error)
    assert answer == b"pong ping"
    assert result.peer is not None and _cn(result.peer) == "connector.eianet"


def test_python_client_trusts_the_connectors_ca_pem(out: Path, ca_pem: Path,
                                                    tmp_path: Path) -> None:
    """The connector's own ca.pem is enough to trust liberty (its PEM truststore)."""
    connector = comp(out, "connector")
    server = server_context(out, ca_pem, "liberty", tmp_path)
    client = client_context(connector / "ca.pem", connector / "fullchain.pem",
                            connector / "key.pem")
    result, answer, error = handshake(server, client, "liberty")
    assert error is None and result.error is None, (error, result.error)
    assert answer == b"pong ping"


def test_python_rejects_a_client_from_another_ca(out: Path, ca_pem: Path, tmp_path: Path,
                                                 other_ca: rt.OtherCa) -> None:
    cert, key = rt.issue_other(other_ca, tmp_path, "impostor", "connector.eianet",
                               ["connector.eianet"], "clientAuth")
    server = server_context(out, ca_pem, "liberty", tmp_path)
    client = client_context(ca_pem, cert, key)
    result, answer, _ = handshake(server, client, "liberty.eianet")
    assert answer is None and result.got is None
    assert isinstance(result.error, ssl.SSLError), result.error
    assert "certificate verify failed" in str(result.error), result.error


def test_python_rejects_a_server_only_certificate_as_client(out: Path, ca_pem: Path,
                                                            tmp_path: Path) -> None:
    """solr's certificate (profile server: serverAuth only) does not pass as a client's."""
    server = server_context(out, ca_pem, "liberty", tmp_path)
    solr = comp(out, "solr")
    client = client_context(ca_pem, solr / "cert.pem", solr / "key.pem")
    result, answer, _ = handshake(server, client, "liberty.eianet")
    assert answer is None and isinstance(result.error, ssl.SSLError), result.error
    assert "certificate purpose" in str(result.error), result.error  # "unsuitable …" in 3.0


def test_python_rejects_a_wrong_host_name(out: Path, ca_pem: Path, tmp_path: Path) -> None:
    connector = comp(out, "connector")
    server = server_context(out, ca_pem, "liberty", tmp_path)
    client = client_context(ca_pem, connector / "fullchain.pem", connector / "key.pem")
    _, answer, error = handshake(server, client, "solr.eianet")
    assert answer is None
    assert isinstance(error, ssl.SSLCertVerificationError), error
    assert "Hostname mismatch" in str(error), error


# --- Java JSSE -----------------------------------------------------------------------------

JAVA = r"""
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.List;
import javax.net.ssl.*;

/** server <ksType> <ksPath> <tsType> <tsPath> <passwordEnv>
 *  client <host> <port> <ksType> <ksPath|-> <tsType> <tsPath> <passwordEnv>
 *  Store and key passwords come from the environment variable named, never from argv. */
public class TlsPeer {
    static KeyStore load(String type, String path, char[] password) throws Exception {
        KeyStore store = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(path)) { store.load(in, password); }
        return store;
    }

    static SSLContext context(String ksType, String ksPath, String tsType, String tsPath,
                              String passwordEnv) throws Exception {
        String secret = System.getenv(passwordEnv);
        if (secret == null) throw new IllegalStateException("$" + passwordEnv + " is not set");
        char[] password = secret.toCharArray();
        KeyManager[] keys = null;
        if (!ksPath.equals("-")) {
            KeyManagerFactory kmf =
                KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(load(ksType, ksPath, password), password);  // key password = store's
            keys = kmf.getKeyManagers();
        }
        TrustManagerFactory tmf =
            TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(tsType, tsPath, password));
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(keys, tmf.getTrustManagers(), null);
        return ctx;
    }

    public static void main(String[] a) throws Exception {
        if (a[0].equals("server")) {
            SSLContext ctx = context(a[1], a[2], a[3], a[4], a[5]);
            try (SSLServerSocket server = (SSLServerSocket) ctx.getServerSocketFactory()
                    .createServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
                server.setNeedClientAuth(true);
                server.setSoTimeout(30000);
                System.out.println("PORT " + server.getLocalPort());
                System.out.flush();
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    s.setSoTimeout(30000);
                    s.startHandshake();
                    BufferedReader in = new BufferedReader(
                        new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                    PrintWriter w = new PrintWriter(
                        new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8), true);
                    String line = in.readLine();
                    System.out.println("PEER " + s.getSession().getPeerPrincipal().getName());
                    System.out.println("GOT " + line);
                    w.println("pong " + line);
                }
            }
        } else {
            String host = a[1];
            int port = Integer.parseInt(a[2]);
            SSLContext ctx = context(a[3], a[4], a[5], a[6], a[7]);
            Socket raw = new Socket();
            raw.connect(new InetSocketAddress("127.0.0.1", port), 10000);
            raw.setSoTimeout(30000);
            try (SSLSocket s = (SSLSocket) ctx.getSocketFactory()
                    .createSocket(raw, host, port, true)) {
                SSLParameters p = s.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                p.setServerNames(List.of(new SNIHostName(host)));
                s.setSSLParameters(p);
                s.startHandshake();
                PrintWriter w = new PrintWriter(
                    new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8), true);
                BufferedReader in = new BufferedReader(
                    new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                w.println("ping");
                String answer = in.readLine();
                System.out.println("PEER " + s.getSession().getPeerPrincipal().getName());
                System.out.println("PROTOCOL " + s.getSession().getProtocol());
                System.out.println("GOT " + answer);
                if (!"pong ping".equals(answer)) System.exit(3);
            }
        }
    }
}
"""

SERVER_VAR, CLIENT_VAR = "TLSPEER_SERVER_PASS", "TLSPEER_CLIENT_PASS"
_JAVA_ENV_OPTS = ["-Duser.language=en", "-Duser.country=US"]


@pytest.fixture(scope="module")
def java_peer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TlsPeer.class, compiled once for the module."""
    if not (shutil.which("java") and shutil.which("javac")):
        pytest.skip("needs java and javac")
    folder = tmp_path_factory.mktemp("java")
    (folder / "TlsPeer.java").write_text(JAVA)
    rt.run(["javac", "-d", folder, folder / "TlsPeer.java"], timeout=120)
    return folder


@dataclass(frozen=True)
class Stores:
    keystore: tuple[str, Path | None]  # (type, path); path None: no keystore
    truststore: tuple[str, Path]


def stores(out: Path, name: str, keystore: str = "jks", truststore: str = "jks") -> Stores:
    ext = {"jks": "jks", "pkcs12": "p12"}
    d = comp(out, name)
    return Stores((keystore, d / f"keystore.{ext[keystore]}"),
                  (truststore, d / f"truststore.{ext[truststore]}"))


@dataclass
class JavaRun:
    server_rc: int
    server_out: str
    client_rc: int
    client_out: str

    def line(self, who: str, prefix: str) -> str | None:
        text = self.server_out if who == "server" else self.client_out
        return next((ln[len(prefix) + 1:] for ln in text.splitlines()
                     if ln.startswith(prefix + " ")), None)


def java_handshake(peer: Path, server: Stores, client: Stores, host: str,
                   password: str = PASSWORD) -> JavaRun:
    """Start the Java server on 127.0.0.1, run the Java client against it as `host`."""
    base = ["java", *_JAVA_ENV_OPTS, "-cp", str(peer), "TlsPeer"]
    server_args = base + ["server", server.keystore[0], str(server.keystore[1]),
                          server.truststore[0], str(server.truststore[1]), SERVER_VAR]
    assert not any(password in a for a in server_args)
    proc = subprocess.Popen(server_args, env={**os.environ, SERVER_VAR: password},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("PORT "):
            proc.wait(10)
            pytest.fail(f"the Java server did not start:\n{first}{proc.stdout.read()}")
        port = first.split()[1]
        ks_type, ks_path = client.keystore
        client_args = base + ["client", host, port, ks_type, str(ks_path) if ks_path else "-",
                              client.truststore[0], str(client.truststore[1]), CLIENT_VAR]
        done = rt.run(client_args, env={CLIENT_VAR: password}, secrets=[password],
                      check=False, timeout=60)
        server_out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return JavaRun(proc.returncode, first + server_out, done.returncode,
                   (done.stdout + done.stderr).decode(errors="replace"))


def _assert_ok(r: JavaRun, server_cn: str, client_cn: str) -> None:
    assert r.client_rc == 0 and r.server_rc == 0, (
        f"client:\n{r.client_out}\nserver:\n{r.server_out}")
    assert r.line("client", "GOT") == "pong ping"
    assert r.line("server", "GOT") == "ping"
    assert r.line("client", "PEER").startswith(f"CN={server_cn},"), r.client_out
    assert r.line("server", "PEER").startswith(f"CN={client_cn}"), r.server_out


def test_java_jks_server_jks_client(out: Path, java_peer: Path) -> None:
    """solr2 (server_client, JKS) serves; liberty (JKS) connects and checks solr2.eianet."""
    r = java_handshake(java_peer, stores(out, "solr2"), stores(out, "liberty"), "solr2.eianet")
    _assert_ok(r, "solr2.eianet", "liberty.eianet")


def test_java_pkcs12_server_jks_client(out: Path, java_peer: Path) -> None:
    """db2 serves from its PKCS#12 keystore and truststore; liberty (JKS) connects."""
    r = java_handshake(java_peer, stores(out, "db2", "pkcs12", "pkcs12"),
                       stores(out, "liberty"), "db2.eianet")
    _assert_ok(r, "db2.eianet", "liberty.eianet")


def test_java_legacy_pkcs12_user_client(out: Path, java_peer: Path) -> None:
    """Jenny's legacy PKCS#12 (3DES/SHA-1) as the client's keystore, etl_client's JKS
    truststore as its trust, against liberty."""
    client = Stores(("pkcs12", comp(out, "Jenny") / "keystore.p12"),
                    ("jks", comp(out, "etl_client") / "truststore.jks"))
    r = java_handshake(java_peer, stores(out, "liberty"), client, "liberty.eianet")
    _assert_ok(r, "liberty.eianet", "Jenny")


def test_java_client_without_the_ca_fails(out: Path, java_peer: Path, tmp_path: Path,
                                          other_ca: rt.OtherCa) -> None:
    trust = rt.jks_truststore_of(other_ca.cert, tmp_path / "other-trust.jks", PASSWORD)
    client = Stores(stores(out, "liberty").keystore, ("jks", trust))
    r = java_handshake(java_peer, stores(out, "solr2"), client, "solr2.eianet")
    assert r.client_rc != 0 and r.line("client", "GOT") is None, r.client_out
    assert "PKIX path building failed" in r.client_out, r.client_out
    assert r.server_rc != 0 and r.line("server", "GOT") is None, r.server_out


def test_java_client_rejects_a_wrong_host_name(out: Path, java_peer: Path) -> None:
    """Endpoint identification is on: solr2's certificate does not name liberty.eianet."""
    r = java_handshake(java_peer, stores(out, "solr2"), stores(out, "liberty"),
                       "liberty.eianet")
    assert r.client_rc != 0 and r.line("client", "GOT") is None, r.client_out
    assert "No subject alternative DNS name matching liberty.eianet" in r.client_out


def test_java_server_rejects_a_server_only_client_certificate(out: Path,
                                                              java_peer: Path) -> None:
    """solr (profile server, serverAuth only) may not authenticate as a client."""
    r = java_handshake(java_peer, stores(out, "liberty"), stores(out, "solr"),
                       "liberty.eianet")
    assert r.server_rc != 0 and r.line("server", "GOT") is None, r.server_out
    assert r.line("client", "GOT") is None, r.client_out
    assert "Extended key usage does not permit use for TLS client authentication" \
        in r.server_out, r.server_out
