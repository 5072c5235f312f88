"""The PKI build as a doit graph: ca_image → ca → keygen → csr → sign → stores → verify →
manifest → deploy.

Run `doit` to build everything, `doit sign:solr2` for one piece, `doit list` for every task.
"""

import os
import sys

from tasks import ca, config, csr, deploy, keygen, manifest, passwords, sign, stores, verify
from tasks.adapters import fs
from tasks.errors import ConfigError

try:
    CONFIG = config.load()
except ConfigError as exc:
    sys.exit("\n".join(f"error: {line}" for line in exc.problems))

passwords.decide_prompt()
os.umask(0o077)  # doit's own state file too: nothing under output/ readable by others by default

try:
    fs.ensure_dir(CONFIG.output)
except OSError as exc:
    sys.exit(f"error: {CONFIG.output}: cannot use it as the output folder: {exc.strerror} "
             "(set PKI_OUTPUT or settings.output to a writable folder)")

DOIT_CONFIG = {
    "dep_file": str(fs.Layout(CONFIG.output).state_file),
    "backend": "json",
    "default_tasks": (["ca_image"] if ca.backend(CONFIG) == "docker" else [])
    + ["ca", "keygen", "csr", "sign", "stores", "verify", "manifest"]
    + (["deploy"] if any(c.deploy for c in CONFIG.components.values()) else []),
    "verbosity": 1,
}


def task_ca():
    """the certificate authority (local, or in its own container)"""
    yield from ca.tasks(CONFIG)


def task_keygen():
    """generate each component's private key"""
    yield from keygen.tasks(CONFIG)


def task_csr():
    """make each component's certificate signing request"""
    yield from csr.tasks(CONFIG)


def task_sign():
    """have the CA sign each component's certificate"""
    yield from sign.tasks(CONFIG)


def task_stores():
    """package each component's keystore and truststore"""
    yield from stores.tasks(CONFIG)


def task_verify():
    """check each component's chain, key, names, usages and stores"""
    yield from verify.tasks(CONFIG)


def task_manifest():
    """write output/manifest.json"""
    yield from manifest.tasks(CONFIG)


def task_deploy():
    """copy each component's stores and the CA certificate into its containers"""
    yield from deploy.tasks(CONFIG)
