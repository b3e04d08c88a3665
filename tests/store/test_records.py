"""Users, hosts, VMs and history records: written, read back, counted and loaded at start."""

from __future__ import annotations

import pytest

from oned.records import History, Host, HostShare, User, Vm
from oned.states import HistoryReason, HostState, LcmState, VmState
from oned.store import DuplicateName, Store, StoreError
from oned.template import Template

pytestmark = pytest.mark.db

UNICODE = "Zoë's VM — 雲 ☁ 🚀"


def a_template(vid: int = 0) -> Template:
    return Template(
        [
            ("NAME", UNICODE),
            ("MEMORY", "512"),
            ("DISK", {"SOURCE": "/srv/ttylinux.img", "TARGET": "hda"}),
            ("DISK", {"SOURCE": "/srv/swap.img", "TARGET": "hdb", "TYPE": "swap"}),
            ("NIC", {"NETWORK": "red pública", "IP": f"10.0.0.{vid}"}),
            ("CONTEXT", {"FILES": "/a /b", "QUOTE": 'say "hi", \\ and ]'}),
            ("EMPTY", ""),
        ]
    )


def a_host(hid: int, name: str | None = None) -> Host:
    share = HostShare(*range(1, 14))
    share.max_mem = 3 * 2**40  # KB: more than 2**31, so it needs a BIGINT
    template = Template([("HYPERVISOR", "kvm"), ("MODELNAME", "Xeon® ünïcode"), ("NETRX", "0")])
    return Host(
        id=hid,
        name=name or f"host{hid}",
        im_mad="im_kvm",
        vm_mad="vmm_kvm",
        tm_mad="tm_ssh",
        state=HostState.MONITORED,
        prev_state=HostState.MONITORING,
        last_mon_time=1_700_000_000 + hid,
        cluster="production",
        share=share,
        template=template,
    )


def a_record(vid: int, seq: int, **times: int) -> History:
    return History(vid, seq, f"host{seq}", seq, f"/var/lib/one/{vid}", "vmm_kvm", "tm_ssh", **times)


def a_vm(vid: int, uid: int = 0, state: int = VmState.PENDING, **fields: object) -> Vm:
    return Vm(id=vid, uid=uid, name=f"vm-{vid}", template=a_template(vid), state=state, **fields)


def a_running_vm(vid: int, uid: int = 0) -> Vm:
    vm = a_vm(vid, uid, VmState.ACTIVE, lcm_state=LcmState.RUNNING, deploy_id=f"one-{vid}")
    vm.history = [a_record(vid, 0, stime=10, etime=20, reason=HistoryReason.USER)]
    vm.history.append(a_record(vid, 1, stime=20, pstime=21, petime=22, rstime=23))
    return vm


# -- round trips ---------------------------------------------------------------------------


def test_a_user_reads_back_as_written(store: Store) -> None:
    """Every field of a user survives the database, disabled flag and unicode name included."""
    users = [User(0, "oneadmin", "pbkdf2$1$salt$hash"), User(1, UNICODE, "x", enabled=False)]
    for user in users:
        store.insert_user(user)
    assert store.load_users() == users


def test_a_host_reads_back_with_its_share_and_monitoring_template(store: Store) -> None:
    """Share counters beyond 32 bits and a unicode template come back unchanged."""
    host = a_host(0)
    store.insert_host(host)
    assert store.load_hosts() == [host]


def test_a_vm_reads_back_with_its_history_and_a_template_with_vectors(store: Store) -> None:
    """Every VM column, repeated vectors, quotes and unicode, and each history record."""
    vm = a_running_vm(7, uid=3)
    vm.last_poll, vm.stime, vm.memory, vm.cpu, vm.net_tx, vm.net_rx = 9, 8, 2**33, 50, 2**40, 1
    vm.resched = 1
    store.insert_vm(vm)
    assert store.get_vm(7) == vm
    assert store.load_vms() == [vm]


def test_templates_come_back_as_templates_equal_to_the_original(store: Store) -> None:
    """The loaded template is a Template: same pairs, same order, vectors as dicts."""
    store.insert_vm(a_vm(0))
    loaded = store.get_vm(0)
    assert loaded is not None
    assert isinstance(loaded.template, Template)
    assert list(loaded.template) == list(a_template(0))
    assert loaded.template.get("NIC") == {"NETWORK": "red pública", "IP": "10.0.0.0"}


# -- ids and loading -------------------------------------------------------------------------


def test_next_oids_are_zero_in_an_empty_database(store: Store) -> None:
    """Every pool starts at id 0 (oneadmin is user 0)."""
    assert store.next_oids() == {"user": 0, "host": 0, "vm": 0, "network": 0, "image": 0}


def test_next_oids_follow_the_highest_id_and_count_done_vms(store: Store) -> None:
    """A DONE VM still holds its id: it is never handed out again."""
    store.insert_user(User(0, "oneadmin", "x"))
    store.insert_host(a_host(4))
    store.insert_vm(a_vm(0))
    store.insert_vm(a_vm(9, state=VmState.DONE))
    assert store.next_oids() == {"user": 1, "host": 5, "vm": 10, "network": 0, "image": 0}


def test_load_vms_leaves_out_done_vms_and_orders_each_history_by_seq(store: Store) -> None:
    """Only the working set is loaded, in id order; records come back in seq order."""
    for vid in (5, 1, 3):
        store.insert_vm(a_vm(vid))
    store.insert_vm(a_vm(2, state=VmState.DONE))
    store.insert_vm(a_vm(4, state=VmState.FAILED))
    for seq in (2, 0, 1):
        store.upsert_history(a_record(3, seq))
    store.upsert_history(a_record(2, 0))
    loaded = store.load_vms()
    assert [vm.id for vm in loaded] == [1, 3, 4, 5]
    assert [record.seq for record in loaded[1].history] == [0, 1, 2]
    assert [vm.history for vm in loaded if vm.id != 3] == [[], [], []]


def test_get_vm_finds_done_vms_and_none_for_unknown_ids(store: Store) -> None:
    """DONE VMs leave memory but can still be shown."""
    done = a_vm(0, state=VmState.DONE)
    done.history = [a_record(0, 0, etime=5)]
    store.insert_vm(done)
    assert store.get_vm(0) == done
    assert store.get_vm(1) is None


def test_get_vms_returns_the_existing_ones_in_id_order(store: Store) -> None:
    """A batch read skips ids that do not exist and spans more ids than one IN list holds."""
    for vid in range(0, 1200, 2):
        store.insert_vm(a_vm(vid))
    found = store.get_vms(reversed(range(1200)))
    assert [vm.id for vm in found] == list(range(0, 1200, 2))


def test_list_vm_ids_filters_by_owner_state_range_and_limit(store: Store) -> None:
    """The rare listings that reach DONE VMs ask the store, through its indexes."""
    states = [VmState.PENDING, VmState.DONE, VmState.ACTIVE, VmState.DONE, VmState.HOLD]
    for vid, state in enumerate(states):
        store.insert_vm(a_vm(vid, uid=vid % 2, state=state))
    assert store.list_vm_ids(uid=None, state=None, include_done=False) == [0, 2, 4]
    assert store.list_vm_ids(uid=None, state=None, include_done=True) == [0, 1, 2, 3, 4]
    assert store.list_vm_ids(uid=1, state=None, include_done=True) == [1, 3]
    assert store.list_vm_ids(uid=None, state=VmState.DONE, include_done=False) == [1, 3]
    assert store.list_vm_ids(uid=0, state=VmState.HOLD, include_done=False) == [4]
    assert store.list_vm_ids(uid=None, state=None, include_done=True, start=1, end=3) == [1, 2, 3]
    assert store.list_vm_ids(uid=None, state=None, include_done=True, start=2, end=-1) == [2, 3, 4]
    assert store.list_vm_ids(uid=None, state=None, include_done=True, limit=2) == [0, 1]


# -- compare-and-swap and history --------------------------------------------------------------


def test_update_vm_with_the_expected_state_writes_the_row(store: Store) -> None:
    """The transition committed when nobody moved the VM meanwhile."""
    store.insert_vm(a_vm(0))
    vm = a_vm(0, state=VmState.ACTIVE, lcm_state=LcmState.PROLOG, prev_state=VmState.PENDING)
    assert store.update_vm(vm, expect=(VmState.PENDING, LcmState.LCM_INIT)) is True
    assert store.get_vm(0) == vm


def test_update_vm_on_a_stale_state_refuses_and_changes_nothing(store: Store) -> None:
    """A late driver reply cannot overwrite a VM that already moved on; its history neither."""
    original = a_vm(0, state=VmState.ACTIVE, lcm_state=LcmState.RUNNING)
    store.insert_vm(original)
    stale = a_vm(0, state=VmState.FAILED, lcm_state=LcmState.LCM_INIT, deploy_id="late")
    written = store.update_vm(
        stale, expect=(VmState.ACTIVE, LcmState.BOOT), history=[a_record(0, 0, etime=99)]
    )
    assert written is False
    assert store.get_vm(0) == original


def test_update_vm_that_changes_no_value_still_reports_success(store: Store) -> None:
    """MySQL must count matched rows, not changed ones, or an idle write would look stale."""
    vm = a_vm(0)
    store.insert_vm(vm)
    assert store.update_vm(vm, expect=(vm.state, vm.lcm_state)) is True
    assert store.update_vm(vm) is True


def test_update_vm_of_an_unknown_vm_reports_false(store: Store) -> None:
    """There is no row to swap."""
    assert store.update_vm(a_vm(42)) is False


def test_update_vm_writes_its_history_records_in_the_same_transaction(store: Store) -> None:
    """Opening a record on deploy and closing the previous one commit with the state change."""
    vm = a_vm(0)
    vm.history = [a_record(0, 0, stime=1)]
    store.insert_vm(vm)
    vm.state, vm.lcm_state = VmState.ACTIVE, LcmState.PROLOG_MIGRATE
    vm.history[0].etime = 2
    vm.history.append(a_record(0, 1, stime=2))
    assert store.update_vm(vm, expect=(VmState.PENDING, LcmState.LCM_INIT), history=vm.history)
    assert store.get_vm(0) == vm


def test_upsert_history_inserts_then_overwrites_the_same_record(store: Store) -> None:
    """(vid, seq) identifies a record; writing it again, even unchanged, keeps one row."""
    store.insert_vm(a_vm(0))
    record = a_record(0, 0, stime=1)
    store.upsert_history(record)
    store.upsert_history(record)
    record.etime, record.reason = 5, HistoryReason.ERROR
    store.upsert_history(record)
    loaded = store.get_vm(0)
    assert loaded is not None
    assert loaded.history == [record]


# -- unique names and atomicity ----------------------------------------------------------------


def test_a_taken_user_name_raises_duplicate_name_and_keeps_the_first_user(store: Store) -> None:
    """The second user is refused by name; nothing of it is written."""
    first = User(0, "alice", "one")
    store.insert_user(first)
    with pytest.raises(DuplicateName, match='user name "alice" is already taken') as raised:
        store.insert_user(User(1, "alice", "two"))
    assert raised.value.name == "alice"
    assert store.load_users() == [first]
    assert store.next_oids()["user"] == 1


def test_a_taken_host_name_raises_duplicate_name_and_keeps_the_first_host(store: Store) -> None:
    """The same for hosts, on insert and on a rename."""
    first, second = a_host(0, "node1"), a_host(1, "node2")
    store.insert_host(first)
    store.insert_host(second)
    with pytest.raises(DuplicateName, match='host name "node1"'):
        store.insert_host(a_host(2, "node1"))
    with pytest.raises(DuplicateName, match='host name "node1"'):
        store.update_host(a_host(1, "node1"))
    assert store.load_hosts() == [first, second]


def test_names_that_differ_only_in_case_are_different_names(store: Store) -> None:
    """Name comparison is exact on every backend (MySQL's default collation is not)."""
    store.insert_user(User(0, "Alice", "x"))
    store.insert_user(User(1, "alice", "x"))
    assert [user.name for user in store.load_users()] == ["Alice", "alice"]


def test_a_name_longer_than_the_column_is_refused_everywhere_alike(store: Store) -> None:
    """SQLite would keep it, the servers would refuse it: the store refuses it first."""
    with pytest.raises(StoreError, match="longer than 255"):
        store.insert_host(a_host(0, "h" * 256))
    assert store.load_hosts() == []


def test_a_failing_write_leaves_nothing_half_written(store: Store) -> None:
    """A VM whose history cannot be written is not written either."""
    vm = a_vm(0)
    vm.history = [a_record(0, 0), a_record(0, 0)]  # the same primary key twice
    with pytest.raises(StoreError):
        store.insert_vm(vm)
    assert store.get_vm(0) is None
    store.insert_vm(a_vm(0))  # and the store is usable afterwards
    assert store.list_vm_ids(uid=None, state=None, include_done=False) == [0]


# -- hosts, users: updates and deletes -----------------------------------------------------------


def test_update_hosts_writes_a_whole_monitoring_batch(store: Store) -> None:
    """One call stores the new share, state and template of every host given."""
    hosts = [a_host(hid) for hid in range(50)]
    for host in hosts:
        store.insert_host(host)
    for host in hosts:
        host.last_mon_time += 60
        host.share.used_cpu = 100 + host.id
        host.template = Template([("HYPERVISOR", "kvm"), ("NETRX", str(host.id * 1000))])
    hosts[3].state = HostState.ERROR
    store.update_hosts(hosts)
    assert store.load_hosts() == hosts


def test_update_user_and_update_host_write_every_field(store: Store) -> None:
    """Password change, disabling, a host rename and new MADs all persist."""
    store.insert_user(User(0, "bob", "old"))
    store.insert_host(a_host(0))
    user = User(0, "bob", "new", enabled=False)
    host = a_host(0, "renamed")
    host.im_mad, host.state = "im_xen", HostState.DISABLED
    store.update_user(user)
    store.update_host(host)
    assert store.load_users() == [user]
    assert store.load_hosts() == [host]


def test_updating_a_user_or_host_that_is_not_there_raises(store: Store) -> None:
    """The pools and the database disagree: say so rather than lose the write silently."""
    with pytest.raises(StoreError, match="no user 3"):
        store.update_user(User(3, "ghost", "x"))
    with pytest.raises(StoreError, match="no host 4"):
        store.update_host(a_host(4))


def test_deleted_users_and_hosts_are_gone_and_others_stay(store: Store) -> None:
    """Deletes remove one row each."""
    store.insert_user(User(0, "oneadmin", "x"))
    store.insert_user(User(1, "carol", "x"))
    store.insert_host(a_host(0))
    store.insert_host(a_host(1))
    store.delete_user(1)
    store.delete_host(0)
    assert [user.id for user in store.load_users()] == [0]
    assert [host.id for host in store.load_hosts()] == [1]


# -- durability -----------------------------------------------------------------------------------


def test_a_vm_acknowledged_before_a_crash_is_there_for_the_next_oned(store: Store, target) -> None:
    """Each write commits before it returns: a second store, opened while the first is still
    open (as after kill -9), sees the row and the history."""
    vm = a_running_vm(0)
    store.insert_vm(vm)
    store.update_vm(a_vm(0, state=VmState.ACTIVE, lcm_state=LcmState.RUNNING), history=vm.history)
    survivor = target.open()
    loaded = survivor.load_vms()
    assert [v.id for v in loaded] == [0]
    assert loaded[0].history == vm.history
    assert survivor.next_oids()["vm"] == 1


def test_a_dropped_server_connection_fails_one_call_and_the_next_reconnects(
    store: Store, target
) -> None:
    """A server restart costs the call in flight a StoreError, not the daemon."""
    if target.backend == "sqlite":
        pytest.skip("sqlite has no server connection to lose")
    store.insert_user(User(0, "oneadmin", "x"))
    _kill_connection(store, target.backend)
    with pytest.raises(StoreError):
        store.load_users()
    assert [user.name for user in store.load_users()] == ["oneadmin"]
    store.insert_user(User(1, "after", "x"))
    assert store.next_oids()["user"] == 2


def _kill_connection(store: Store, backend: str) -> None:
    """End the store's server session from a second connection."""
    connection = store._conn
    if backend == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        kill = f"SELECT pg_terminate_backend({pid})"
    else:
        pid = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        kill = f"KILL {pid}"
    connection.rollback()
    other = store._engine.connect()
    try:
        other.exec_driver_sql(kill)
        other.commit()
    finally:
        other.close()
