"""A VM's USER_TEMPLATE in vm_pool.user_template (revision 0002), on every backend."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from oned.records import History, Vm
from oned.states import LcmState, VmState
from oned.store import Store, migrate, rows, schema
from oned.template import Template
from tests.store.targets import LOGGER, Target

pytestmark = pytest.mark.db

MESSAGE = "Sat Nov 28 10:00:00 2026 : No host with enough capacity — 雲 ☁"


def a_vm(vid: int, user_template: Template | None = None) -> Vm:
    template = Template([("NAME", f"vm-{vid}"), ("MEMORY", "64"), ("DISK", {"TARGET": "hda"})])
    vm = Vm(vid, 0, f"vm-{vid}", template, stime=1_700_000_000 + vid)
    if user_template is not None:
        vm.user_template = user_template
    return vm


def a_user_template() -> Template:
    return Template(
        [("SCHED_MESSAGE", MESSAGE), ("LABELS", {"TEAM": "web", "QUOTE": 'say "hi", ]'})]
    )


def stored_user_templates(target: Target) -> dict[int, str | None]:
    """The raw vm_pool.user_template column, by oid."""
    engine = target.engine()
    try:
        with engine.connect() as conn:
            query = sa.select(schema.vm_pool.c.oid, schema.vm_pool.c.user_template)
            return dict(conn.execute(query).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_a_user_template_reads_back_as_written(store: Store) -> None:
    """Singles, vectors and unicode survive insert, load at start and get_vm."""
    vm = a_vm(0, a_user_template())
    store.insert_vm(vm)
    assert store.load_vms() == [vm]
    found = store.get_vm(0)
    assert found is not None and found.user_template == a_user_template()


def test_an_empty_user_template_is_stored_as_null_and_reads_back_empty(
    store: Store, target: Target
) -> None:
    """NULL means none, like the rows written before revision 0002."""
    store.insert_vm(a_vm(0))
    store.insert_vm(a_vm(1, a_user_template()))
    stored = stored_user_templates(target)
    assert stored[0] is None and stored[1] is not None
    assert [vm.user_template for vm in store.load_vms()] == [Template(), a_user_template()]


def test_update_vm_writes_and_clears_the_user_template(store: Store, target: Target) -> None:
    """one.vm.update's write: set, then emptied again back to NULL; the template is untouched."""
    vm = a_vm(0)
    store.insert_vm(vm)
    vm.user_template = a_user_template()
    assert store.update_vm(vm)
    assert store.get_vm(0) == vm
    vm.user_template = Template()
    assert store.update_vm(vm)
    assert stored_user_templates(target) == {0: None}
    assert store.load_vms() == [vm]


def at_revision_0001(target: Target) -> None:
    """Build the schema of revision 0001 only, as an older oned left it."""
    engine = target.engine()
    try:
        with engine.connect() as conn, conn.begin():
            command.upgrade(migrate.alembic_config(conn), "0001")
    finally:
        engine.dispose()


def insert_0001_rows(target: Target, vm: Vm) -> None:
    """A VM row and its history as revision 0001's columns hold them (no user_template)."""
    engine = target.engine()
    try:
        with engine.begin() as conn:
            tables = sa.MetaData()
            vm_pool = sa.Table("vm_pool", tables, autoload_with=conn)
            history = sa.Table("history", tables, autoload_with=conn)
            assert "user_template" not in vm_pool.c
            params = rows.vm_params(vm)
            del params["user_template"]
            conn.execute(vm_pool.insert(), {"oid": vm.id, **params})
            conn.execute(history.insert(), [rows.history_params(h) for h in vm.history])
    finally:
        engine.dispose()


def test_a_database_at_revision_0001_is_migrated_and_keeps_its_vms(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening adds the column, says it migrated from 0001, and the VMs load with none set."""
    at_revision_0001(target)
    vm = a_vm(3)
    vm.state, vm.lcm_state = VmState.ACTIVE, LcmState.RUNNING
    vm.history = [History(3, 0, "host01", 0, "/var/lib/one", "vmm_kvm", "tm_nfs", stime=5)]
    insert_0001_rows(target, vm)
    with caplog.at_level(logging.INFO):
        store = target.open()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == ["Database schema at revision 0006 (migrated from 0001)"]
    assert store.load_vms() == [vm]
    vm.user_template = a_user_template()
    assert store.update_vm(vm)
    assert store.get_vm(3) == vm


def test_the_migrated_database_matches_the_schema_module(target: Target) -> None:
    """0001 then the later revisions build what schema.py describes (MEDIUMTEXT on MySQL)."""
    at_revision_0001(target)
    target.open().close()
    engine = target.engine()
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, schema.metadata) == []
            column = next(
                c for c in sa.inspect(conn).get_columns("vm_pool") if c["name"] == "user_template"
            )
            assert column["nullable"]
    finally:
        engine.dispose()


def test_revision_0002_downgrades_to_0001_keeping_the_rows(target: Target) -> None:
    """The way back drops the column only; the VM rows stay."""
    store = target.open()
    store.insert_vm(a_vm(0, a_user_template()))
    store.close()
    engine = target.engine()
    try:
        with engine.connect() as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), "0001")
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("vm_pool")}
            assert "user_template" not in columns and "template" in columns
            assert conn.execute(sa.text("SELECT oid, name FROM vm_pool")).all() == [(0, "vm-0")]
    finally:
        engine.dispose()
