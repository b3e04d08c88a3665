"""The rules between the parts (DESIGN.md §3) that a test can check; HACKING.md lists them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "oned.template",
    "oned.template_parser",
    "oned.template_xml",
    "oned.config",
    "oned.config_values",
    "oned.states",
    "oned.errors",
    "oned.locations",
    "oned.records",
    "oned.client",
    "oned.auth",
    "oned.views",
    "oned.vmtemplate",
    "oned.restricted",
    "oned.rpc.marshal",
    "oned.rpc.peek",
    "oned.filemodes",
    "oned.lifecycle",
    "oned.lifecycle_table",
    "oned.lifecycle_effects",
    "oned.reconcile",
    "oned.expr",
    "oned.expr_nodes",
    "oned.vnet",
    "oned.image_views",
    "oned.vnet_views",
    "oned.collector",
    "oned.imagetemplate",
    "oned.ec2keys",
    "econe.errors",
    "econe.request",
    "econe.sigv4",
    "econe.sigv2",
    "econe.signature",
    "econe.query",
    "econe.responses",
    "econe.states",
    "econe.filters",
    "econe.config",
    "econe.actions",
    "econe.credentials",
    "econe.one",
    "econe.context",
    "econe.instances",
    "econe.images",
    "econe.keypairs",
    "econe.tags",
    "econe.instance_types",
    "econe.tokens",
    "econe.keyexchange",
    "econe.daemon",
    "econe.wiring",
    "econe.addresses",
    "econe.address_book",
    "econe.jsonfile",
    "econe.s3_wire",
    "econe.s3_api",
    "econe.s3_store",
    "econe.s3_multipart",
    "econe.s3_listing",
    "econe.s3_chunked",
    "econe.s3_sink",
    "oned.changes",
    "oned.poll_schedule",
    "oned.log",
    "econe.vm_rows",
    "econe.feed",
    "oned.xmlcache",
    "oned.memprofile",
    "dashboard.config",
    "dashboard.sessions",
    "dashboard.oned",
    "dashboard.views",
    "dashboard.api",
    "dashboard.pool_copy",
    "dashboard.daemon",
    "scheduler.ec2",
    "drivers.values",
    "drivers.tm_script",
    "drivers.ec2_conf",
    "drivers.ec2_section",
    "drivers.kvm_migration",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_load_neither_twisted_nor_sqlalchemy(module):
    """Importing a pure module, even indirectly, brings in no reactor and no database."""
    code = (
        f"import sys, {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('twisted', 'sqlalchemy')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def imports_of(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append((path, node.module))
    return found


def test_drivers_never_import_oned():
    """A driver is a cheap executable; the protocol codec lives in drivers/protocol.py."""
    bad = [(p, m) for p, m in imports_of("drivers") if m.split(".")[0] == "oned"]
    assert bad == []


@pytest.mark.parametrize("package", ["cli", "scheduler", "econe", "dashboard"])
def test_clients_reach_oned_only_through_xml_rpc(package):
    """No database access and no oned internals other than the pure modules."""
    allowed = {m for m in PURE}
    bad = [
        (p, m)
        for p, m in imports_of(package)
        if m.split(".")[0] == "sqlalchemy" or (m.startswith("oned") and m not in allowed | {"oned"})
    ]
    assert bad == []
