"""VM polling in a real oned with the real dummy VMM (issue 18): 300 RUNNING VMs, all due at
once after a start, are polled within their rounds, spread over the interval, with no POLL
timing out or answered for nobody, and again at the next rounds; a POLL saying a VM is gone
still moves it to UNKNOWN."""

from __future__ import annotations

import sqlalchemy as sa

from bench.scale import build
from oned.store.engine import create_engine
from oned.store.schema import vm_pool
from tests.functional.oned_process import OnedProcess
from tests.store.targets import Db
from tests.waiting import wait_for

VMS, HOSTS, INTERVAL = 300, 10, 5
GONE = 7  # the dummy answers STATE=d for this VM
LATER = 11  # and for this one from the second round on
UNKNOWN = 16


def last_polls(db_file: str) -> dict[int, int]:
    """Each VM's LAST_POLL as the store holds it."""
    engine = create_engine(Db("sqlite"), db_file)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(vm_pool.c.oid, vm_pool.c.last_poll)).all()
    finally:
        engine.dispose()
    return {oid: last_poll for oid, last_poll in rows}


def test_every_running_vm_is_polled_spread_over_the_interval_without_timeouts(tmp_path):
    """oned starts on 300 RUNNING VMs last polled long ago; every one gets its POLL answered
    and stored, not all in one second; nothing in oned.log says a POLL failed."""
    location = tmp_path / "one"
    db_file = location / "var" / "one.db"
    db_file.parent.mkdir(parents=True)
    build(Db("sqlite"), str(db_file), VMS, VMS, HOSTS, vm_mad="vmm_script")
    script = tmp_path / "vmm.yaml"
    script.write_text(f'POLL:\n  "{GONE}": {{state: d}}\n  "*": {{outcome: success}}\n')
    extra = (
        'VM_MAD = [ name = "vmm_script", executable = "one_vmm_dummy",\n'
        f'          arguments = "--script {script}", type = "xml" ]\n'
    )
    oned = OnedProcess(location, conf_extra=extra).set(VM_POLLING_INTERVAL=INTERVAL)
    oned.start(timeout=60)
    try:
        polls = wait_for(
            lambda: (p := last_polls(str(db_file))) and min(p.values()) > 1_700_000_000 and p,
            timeout=180,
        )
        assert len(set(polls.values())) > 1, "all polled in the same second"
        wait_for(lambda: _lcm_state(db_file, GONE) == UNKNOWN, timeout=60)
        log = oned.log
        assert "no answer from" not in log
        assert "Error monitoring VM" not in log
        assert "dropped a reply nobody waits for" not in log
        running = [v for v in range(VMS) if v not in (GONE, LATER)]
        assert {_lcm_state(db_file, v) for v in running[:: VMS // 10]} == {3}  # RUNNING
        script.write_text(f'POLL:\n  "{LATER}": {{state: d}}\n  "*": {{outcome: success}}\n')
        wait_for(lambda: _lcm_state(db_file, LATER) == UNKNOWN, timeout=60)  # polled again
        assert "no answer from" not in oned.log
    finally:
        oned.stop()


def _lcm_state(db_file, vid: int) -> int:
    engine = create_engine(Db("sqlite"), str(db_file))
    try:
        with engine.connect() as conn:
            query = sa.select(vm_pool.c.lcm_state).where(vm_pool.c.oid == vid)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()
