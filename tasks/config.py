"""The only reader of config/: parses deployment.toml into frozen dataclasses, reporting every
problem at once as ``<file>: <key>: <what is wrong> (<how to fix>)``."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import targets
from .errors import ConfigError
from .pki import keys, names, profiles

STORE_TYPES = ("jks", "pkcs12", "pem", "none")
BACKENDS = ("auto", "local", "docker")
DIALECTS = ("db2", "sqlserver", "postgres")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULT_CONFIG = Path("config/deployment.toml")
MAX_DAYS = 36500


@dataclass(frozen=True)
class CaConfig:
    subject: str
    key: keys.KeySpec
    validity_days: int
    alias: str
    image: str
    base_image: str
    container: str
    volume: str


@dataclass(frozen=True)
class PasswordSource:
    """Where a store password comes from; never the password itself."""

    env: str
    file: Path | None


@dataclass(frozen=True)
class Component:
    name: str
    subject: str
    dns: tuple[str, ...]
    ip: tuple[str, ...]
    profile: profiles.Profile | None
    key: keys.KeySpec | None
    validity_days: int
    keystore: str
    truststore: str
    encryption: str
    password: PasswordSource
    deploy: tuple[targets.Target, ...] = ()

    @property
    def alias(self) -> str:
        return self.name.lower()

    @property
    def has_key(self) -> bool:
        return self.keystore != "none"


@dataclass(frozen=True)
class Config:
    path: Path
    output: Path
    backend: str
    dialect: str
    renew_before_days: int
    ca: CaConfig
    profiles: dict[str, profiles.Profile]
    components: dict[str, Component] = field(default_factory=dict)


class _Reader:
    """Collects problems while reading tables, so that all are reported together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: {key}: {message}")

    def table(self, data: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
        value = data.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
            return {}
        for unknown in sorted(set(value) - allowed):
            self.fail(f"{key}.{unknown}", f"unknown setting (known: {', '.join(sorted(allowed))})")
        return value

    def get(self, table: dict[str, Any], prefix: str, key: str, kind: type, default: Any) -> Any:
        value = table.get(key, default)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(f"{prefix}.{key}", f"{value!r} must be a whole number")
            return default
        if kind is not int and not isinstance(value, kind):
            self.fail(f"{prefix}.{key}", f"{value!r} must be a {kind.__name__}")
            return default
        return value

    def choice(self, table: dict[str, Any], prefix: str, key: str, options: tuple[str, ...],
               default: str, env: str | None = None) -> str:
        value = os.environ.get(env, "") if env else ""
        where = f"{prefix}.{key}" + (f" (or ${env})" if env else "")
        value = value or self.get(table, prefix, key, str, default)
        if value not in options:
            self.fail(where, f"{value!r} is not one of {', '.join(options)}")
            return default
        return value

    def positive(self, table: dict[str, Any], prefix: str, key: str, default: int) -> int:
        value = self.get(table, prefix, key, int, default)
        if not 1 <= value <= MAX_DAYS:
            self.fail(f"{prefix}.{key}", f"{value} must be from 1 to {MAX_DAYS} (100 years)")
            return default
        return value

    def key_spec(self, table: dict[str, Any], prefix: str, default: str) -> keys.KeySpec:
        text = self.get(table, prefix, "key", str, default)
        try:
            return keys.parse_spec(text)
        except ValueError as exc:
            self.fail(f"{prefix}.key", str(exc))
            return keys.parse_spec("rsa:2048")


_SETTINGS = {"ca_backend", "database_dialect", "renew_before_days", "password_env",
             "password_file", "output"}
_CA = {"subject", "key", "validity_days", "alias", "image", "base_image", "container", "volume"}
_DEFAULTS = {"key", "validity_days", "keystore", "truststore", "encryption", "domain", "country"}
_COMPONENT = {"profile", "subject", "dns", "ip", "key", "validity_days", "keystore", "truststore",
              "encryption", "password_env", "password_file", "dialect", "deploy"}


def load(path: Path | None = None) -> Config:
    """Read the config named by $PKI_CONFIG (default config/deployment.toml)."""
    path = path or Path(os.environ.get("PKI_CONFIG") or DEFAULT_CONFIG)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: cannot read the config: no such file "
                           "(set PKI_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the config: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    r = _Reader(path)
    for unknown in sorted(set(data) - {"settings", "ca", "defaults", "profiles", "components"}):
        r.fail(unknown, "unknown table (known: settings, ca, defaults, profiles, components)")
    settings = r.table(data, "settings", _SETTINGS)
    output = os.environ.get("PKI_OUTPUT") or r.get(settings, "settings", "output", str, "output")
    renew = r.get(settings, "settings", "renew_before_days", int, 30)
    if renew < 0:
        r.fail("settings.renew_before_days", f"{renew} must not be negative")
    password = _password_source(r, settings, "settings", path.parent,
                                PasswordSource("SSL_PASSWORD", None))
    ca = _ca(r, r.table(data, "ca", _CA))
    profs = _profiles(r, data.get("profiles", {}))
    dialect = r.choice(settings, "settings", "database_dialect", DIALECTS, "db2", "PKI_DB_DIALECT")
    backend = r.choice(settings, "settings", "ca_backend", BACKENDS, "auto", "PKI_CA_BACKEND")
    defaults = r.table(data, "defaults", _DEFAULTS)
    comps: dict[str, Component] = {}
    raw = data.get("components", {})
    if not isinstance(raw, dict) or not raw:
        r.fail("components", "must hold at least one [components.<name>] table")
        raw = {}
    for name, table in raw.items():
        prefix = f"components.{name}"
        if not isinstance(table, dict):
            r.fail(prefix, "must be a table")
            continue
        table = r.table(raw, prefix, _COMPONENT)
        if table.get("dialect", dialect) not in DIALECTS:
            r.fail(f"{prefix}.dialect", f"{table['dialect']!r} is not one of {', '.join(DIALECTS)}")
        # Every component is checked, the other dialects' databases too; only ours is built.
        comp = _component(r, name, table, defaults, profs, password, path.parent, renew)
        if comp and table.get("dialect", dialect) == dialect:
            comps[name] = comp
    if r.problems:
        raise ConfigError(list(dict.fromkeys(r.problems)))  # defaults are read per component
    return Config(path, Path(output), backend, dialect, renew, ca, profs, comps)


def _password_source(r: _Reader, table: dict[str, Any], prefix: str, base: Path,
                     inherited: PasswordSource) -> PasswordSource:
    env = r.get(table, prefix, "password_env", str, inherited.env)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", env):
        r.fail(f"{prefix}.password_env", f"{env!r} is not an environment variable name")
    file_text = r.get(table, prefix, "password_file", str, "")
    file = (base / file_text) if file_text else inherited.file
    return PasswordSource(env, file)


def _ca(r: _Reader, t: dict[str, Any]) -> CaConfig:
    subject = r.get(t, "ca", "subject", str,
                    "CN=i2CA, OU=i2, O=i2Group, L=Cambridge, ST=Cambridgeshire, C=GB")
    try:
        names.parse_subject(subject)
    except ValueError as exc:
        r.fail("ca.subject", str(exc))
    return CaConfig(
        subject=subject,
        key=r.key_spec(t, "ca", "rsa:4096"),
        validity_days=r.positive(t, "ca", "validity_days", 1095),
        alias=_alias(r, r.get(t, "ca", "alias", str, "ca")),
        image=r.get(t, "ca", "image", str, "i2-pki-ca"),
        base_image=os.environ.get("PKI_CA_BASE_IMAGE")
        or r.get(t, "ca", "base_image", str, "debian:bookworm-slim"),
        container=r.get(t, "ca", "container", str, "ca"),
        volume=r.get(t, "ca", "volume", str, "i2-pki-ca-data"),
    )


def _alias(r: _Reader, alias: str) -> str:
    """Java key stores fold aliases to lower case; so do we, or the stores never settle."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", alias):
        r.fail("ca.alias", f"{alias!r} must be letters, digits, '.', '_', '-'")
    return alias.lower()


def _profiles(r: _Reader, raw: Any) -> dict[str, profiles.Profile]:
    merged: dict[str, Any] = {k: dict(v) for k, v in profiles.BUILTIN_PROFILES.items()}
    if not isinstance(raw, dict):
        r.fail("profiles", "must be a table of [profiles.<name>] tables")
        raw = {}
    for name in raw:
        merged[name] = r.table(raw, f"profiles.{name}", {"key_usage", "extended_key_usage"})
    out = {}
    for name, table in merged.items():
        ku = table.get("key_usage", ["digital_signature", "key_encipherment"])
        eku = table.get("extended_key_usage", [])
        if ku == []:
            r.fail(f"profiles.{name}.key_usage", "is empty; a leaf needs at least one usage "
                   "(e.g. [\"digital_signature\"])")
        for key, values, known in (("key_usage", ku, profiles.KEY_USAGES),
                                   ("extended_key_usage", eku, tuple(profiles.EXTENDED_USAGES))):
            if not isinstance(values, list):
                r.fail(f"profiles.{name}.{key}", f"{values!r} must be a list, e.g. "
                       f"[\"{known[0]}\"]")
                continue
            bad = [v for v in values if v not in known]
            if bad:
                r.fail(f"profiles.{name}.{key}", f"{bad!r} not known (use {', '.join(known)})")
            if len(set(values)) != len(values):
                r.fail(f"profiles.{name}.{key}", "lists a usage twice (list each once)")
        out[name] = profiles.Profile(name, tuple(ku), tuple(eku))
    return out


def _component(r: _Reader, name: str, t: dict[str, Any], d: dict[str, Any],
               profs: dict[str, profiles.Profile], inherited: PasswordSource, base: Path,
               renew: int) -> Component | None:
    p = f"components.{name}"
    if not _NAME.match(name):
        r.fail(p, "a component name uses letters, digits, '_', '.', '-' (rename the table)")
        return None
    domain = r.get(d, "defaults", "domain", str, "eianet")
    country = r.get(d, "defaults", "country", str, "GB")
    fqdn = f"{name}.{domain}".lower() if domain else name.lower()
    subject = r.get(t, p, "subject", str, f"CN={fqdn}, C={country}" if country else f"CN={fqdn}")
    try:
        names.parse_subject(subject)
    except ValueError as exc:
        r.fail(f"{p}.subject", str(exc))
    dns, ips = [], []
    for i, v in enumerate(r.get(t, p, "dns", list, [fqdn, name.lower()])):
        try:
            checked = names.check_dns(str(v))
            if checked in dns:
                r.fail(f"{p}.dns[{i}]", f"{v!r} is listed twice (names are not case-sensitive)")
            dns.append(checked)
        except ValueError as exc:
            r.fail(f"{p}.dns[{i}]", f"{exc} (use letters, digits, '-', '_' and '.')")
    for i, v in enumerate(r.get(t, p, "ip", list, [])):
        try:
            checked = names.check_ip(str(v))
            if checked in ips:
                r.fail(f"{p}.ip[{i}]", f"{v!r} is listed twice")
            ips.append(checked)
        except ValueError as exc:
            r.fail(f"{p}.ip[{i}]", str(exc))
    keystore = r.choice(t, p, "keystore", STORE_TYPES,
                        r.choice(d, "defaults", "keystore", STORE_TYPES, "jks"))
    truststore = r.choice(t, p, "truststore", STORE_TYPES,
                          r.choice(d, "defaults", "truststore", STORE_TYPES, "jks"))
    if keystore == truststore == "none":
        r.fail(p, "keystore and truststore are both \"none\" (set at least one)")
    profile_name = r.get(t, p, "profile", str, "server")
    profile = profs.get(profile_name)
    if profile is None and keystore != "none":
        r.fail(f"{p}.profile", f"{profile_name!r} is not a profile (use {', '.join(profs)})")
    default_key = r.get(d, "defaults", "key", str, "rsa:2048")
    if default_key not in keys.SUPPORTED:
        r.fail("defaults.key", f"{default_key!r} is not a supported key (use one of "
               f"{', '.join(keys.SUPPORTED)})")
        default_key = "rsa:2048"
    key = r.key_spec(t, p, default_key)
    if profile and not key.is_rsa and set(profile.key_usage) <= {"key_encipherment"}:
        r.fail(f"{p}.profile", f"profile {profile.name} only allows key_encipherment, which "
               f"{key} keys cannot do (RFC 8813; add digital_signature, or use an RSA key)")
    if t.get("dialect") == "sqlserver" and not key.is_rsa:
        r.fail(f"{p}.key", f"{key} is not RSA; SQL Server only loads RSA keys (use rsa:2048)")
    days = r.positive(t, p, "validity_days", r.positive(d, "defaults", "validity_days", 365))
    if days <= renew and keystore != "none":
        r.fail(f"{p}.validity_days", f"{days} is not longer than settings.renew_before_days "
               f"({renew}): it would be re-signed on every build (raise it)")
    deploy = targets.parse(r.fail, f"{p}.deploy", t.get("deploy", []))
    return Component(
        name=name, subject=subject, dns=tuple(dns), ip=tuple(ips),
        profile=profile if keystore != "none" else None,
        key=key if keystore != "none" else None, validity_days=days,
        keystore=keystore, truststore=truststore,
        encryption=r.choice(t, p, "encryption", ("modern", "legacy"),
                            r.choice(d, "defaults", "encryption", ("modern", "legacy"), "modern")),
        password=_password_source(r, t, p, base, inherited),
        deploy=deploy,
    )
