"""On a terminal with no password set, the store password is asked twice, on a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from .project import Project


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {marker!r} on the terminal; it showed {bytes(seen)!r}")
        try:
            seen += os.read(fd, 4096)
        except OSError:
            raise AssertionError(f"terminal closed; it showed {bytes(seen)!r}") from None


def run_on_pty(project: Project, answers: list[bytes], *args: str) -> tuple[int, bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKI_")}
    env.pop("SSL_PASSWORD", None)
    env["PKI_CA_BACKEND"] = "local"
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=project.root, env=env,
                            stdin=sub, stdout=sub, stderr=sub, start_new_session=True)
    os.close(sub)
    seen, transcript = bytearray(), bytearray()
    for answer in answers:
        _read_until(main, b"Store password", seen)
        cut = seen.index(b"Store password") + len(b"Store password")
        transcript += seen[:cut]
        del seen[:cut]
        os.write(main, answer + b"\n")
    code = proc.wait(timeout=120)
    try:
        while select.select([main], [], [], 0.2)[0]:
            seen += os.read(main, 4096)
    except OSError:
        pass
    os.close(main)
    return code, bytes(transcript + seen)


def test_prompted_password_opens_the_stores(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p")
    code, shown = run_on_pty(project, [b"typed-secret", b"typed-secret"], "stores:liberty")
    assert code == 0, shown
    assert b"typed-secret" not in shown  # no echo
    assert not (project.output / "secrets").exists() or not any(
        (project.output / "secrets").glob("liberty.*"))
    from tasks.pki import stores
    data = (project.output / "components/liberty/keystore.jks").read_bytes()
    assert list(stores.read_jks(data, "typed-secret").key_entries) == ["liberty"]
    assert b"typed-secret" not in (project.output / ".doit.db").read_bytes()
    # A no-op build on the terminal does not ask again.
    code, shown = run_on_pty(project, [], "stores:liberty")
    assert code == 0 and b"Store password" not in shown and b".  stores" not in shown
    # Without a terminal (cron, a pipe) a no-op is still a no-op,
    assert project.ran("stores:liberty", SSL_PASSWORD="<unset>") == set()
    # and stores are not silently re-made with other passwords.
    (project.output / "components/liberty/truststore.jks").unlink()
    proc = project.doit("stores:liberty", check=False, SSL_PASSWORD="<unset>")
    assert proc.returncode != 0
    assert "made with a password typed at a prompt and there is no terminal now" in proc.stdout
    assert list(stores.read_jks(data, "typed-secret").key_entries) == ["liberty"]
    # and a damaged store is found without the password and re-made with the typed one.
    path = project.output / "components/liberty/keystore.jks"
    path.write_bytes(path.read_bytes()[:-40] + bytes(40))
    code, shown = run_on_pty(project, [b"typed-secret", b"typed-secret"], "stores:liberty")
    assert code == 0 and b".  stores:liberty" in shown
    assert list(stores.read_jks(path.read_bytes(), "typed-secret").key_entries) == ["liberty"]


def test_parallel_workers_do_not_fall_back_to_generated_passwords(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p")
    code, shown = run_on_pty(project, [], "-n", "2", "stores:liberty", "stores:solr")
    assert code != 0
    assert b"`doit -n` workers have no terminal" in shown
    assert not list((project.output / "secrets").glob("*.password"))


def test_prompt_answers_must_match(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p")
    code, shown = run_on_pty(project, [b"typed-secret", b"other-secret", b"short", b"short",
                                       b"typed-secret", b"typed-secret2"], "stores:liberty")
    assert code != 0
    assert b"the two passwords differ; try again" in shown
    assert b"at least 6 are needed" in shown
    assert b"no usable password after 3 tries at the prompt" in shown
    assert not (project.output / "components/liberty/keystore.jks").exists()
