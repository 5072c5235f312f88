"""A temporary copy of the project, and doit run in it as a user would (a subprocess)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, dest: Path, **env: str) -> Project:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "dodo.py", dest / "dodo.py")
        for folder in ("tasks", "config"):
            shutil.copytree(ROOT / folder, dest / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        base = {"SSL_PASSWORD": "changeit1", "PKI_CA_BACKEND": "local", "PKI_NO_PROMPT": "1"}
        return cls(dest, {**base, **env})

    def copy(self, dest: Path) -> Project:
        shutil.copytree(self.root, dest, symlinks=True)
        return Project(dest, dict(self.env))

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def config(self) -> Path:
        return self.root / self.env.get("PKI_CONFIG", "config/deployment.toml")

    def doit(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("PKI_") and k != "SSL_PASSWORD"}
        full.update(self.env)
        full.update(env)
        full = {k: v for k, v in full.items() if v is not None and v != "<unset>"}
        proc = subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, env=full,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"doit {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def ran(self, *args: str, **env: str) -> set[str]:
        """The tasks doit executed (its ".  <task>" lines)."""
        out = self.doit(*args, **env).stdout
        return {m.group(1) for m in re.finditer(r"^\.  (\S+)$", out, re.M)}

    def set_option(self, table: str, line: str) -> None:
        """Add ``line`` right under ``[table]``, replacing a setting of the same key."""
        text = self.config.read_text()
        key = line.split("=")[0].strip()
        header = f"[{table}]"
        if header not in text:
            text += f"\n{header}\n"
        start = text.index(header) + len(header)
        end = text.find("\n[", start)
        end = len(text) if end == -1 else end
        body = re.sub(rf"(?m)^{re.escape(key)}\s*=.*\n?", "", text[start:end])
        self.config.write_text(text[:start] + "\n" + line + body.rstrip("\n") + "\n" + text[end:])
