"""econe.conf for a test's oned: at its installed place, a static 0600 keys file, a free port."""

from __future__ import annotations

import json
from pathlib import Path

from tests.functional.oned_process import OnedProcess, free_port

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "ec2query"


def configure_econe(oned: OnedProcess, keys: str = "alice secret\n") -> int:
    """Write ``etc/econe/econe.conf`` (and its keys file) for ``oned``; returns econe's port."""
    etc = oned.location / "etc"
    (etc / "econe").mkdir(parents=True, exist_ok=True)
    keys_file = etc / "econe_keys"
    keys_file.write_text(keys)
    keys_file.chmod(0o600)
    port = free_port()
    conf = {"port": port, "one_xmlrpc": oned.endpoint, "keys_file": str(keys_file)}
    conf["templates_dir"] = str(TEMPLATES)
    (etc / "econe" / "econe.conf").write_text(json.dumps(conf))
    return port
