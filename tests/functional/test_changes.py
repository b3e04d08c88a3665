"""one.system.changes against a real oned with the dummy drivers: what changed after a SEQ,
held until a change the caller sees; resets; bounds; bad arguments; pyone and xmlrpc.client."""

from __future__ import annotations

import re
import resource
import socket
import threading
import time
import xml.etree.ElementTree as ET
import xmlrpc.client

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

ADMIN = "oneadmin:onecloud"
HELEN, DAN = "helen:pw1", "dan:pw2"
WAITERS = 1000  # oned.changes.MAX_WAITERS


@pytest.fixture
def cloud(tmp_path):
    """oned with one dummy host (monitored once: no host change while a test waits) and a
    VMM whose DEPLOY answers after 1 s; users helen (1) and dan (2)."""
    script = tmp_path / "vmm.yaml"
    script.write_text("DEPLOY: {delay: 1}\n")
    extra = (
        'VM_MAD = [ name = "vmm_slow", executable = "one_vmm_dummy",\n'
        f'          arguments = "--script {script}", type = "xml" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=extra)
    oned.set(HOST_MONITORING_INTERVAL=600, MAX_CONN=2000, MAX_CONN_PER_CLIENT=2000).start()
    one = pyone.OneServer(oned.endpoint, session=ADMIN)
    one.host.allocate("host01", "im_dummy", "vmm_slow", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2)
    one.user.allocate("helen", "pw1")
    one.user.allocate("dan", "pw2")
    yield oned
    oned.stop()


def call(oned: OnedProcess, session: str, *args: object) -> list:
    with xmlrpc.client.ServerProxy(oned.endpoint) as proxy:
        return proxy.one.system.changes(session, *args)


def changes(oned: OnedProcess, session: str, *args: object) -> ET.Element:
    ok, body, code = call(oned, session, *args)
    assert ok and code == 0, body
    return ET.fromstring(body)


def now(oned: OnedProcess, session: str) -> int:
    """The SEQ to continue from (a reset answers it)."""
    root = changes(oned, session, 0, 0)
    assert root.get("RESET") == "1"
    return int(root.get("SEQ"))


def vm_ids(root: ET.Element) -> list[int]:
    return [int(vm.findtext("ID")) for vm in root.iterfind("VM_POOL/VM")]


def test_an_allocated_vm_appears_as_vmpool_info_lists_it(cloud):
    seq = now(cloud, HELEN)
    vid = pyone.OneServer(cloud.endpoint, session=HELEN).vm.allocate("NAME = a\nMEMORY = 64")
    root = changes(cloud, HELEN, seq, 0)
    assert root.get("RESET") == "0" and int(root.get("SEQ")) > seq
    assert vm_ids(root) == [vid]
    with xmlrpc.client.ServerProxy(cloud.endpoint) as proxy:
        listed = ET.fromstring(proxy.one.vmpool.info(HELEN, -1)[1]).find("VM")
    assert ET.tostring(root.find("VM_POOL/VM")) == ET.tostring(listed)


def test_a_state_change_by_the_driver_wakes_a_waiting_call_within_2_s(cloud):
    """The VM is in BOOT until the dummy VMM answers DEPLOY (1 s): a call waiting then gets
    the VM RUNNING soon after that answer, not at the end of its 20 s wait (2 s on a quiet
    machine; the bound here leaves room for a loaded CI machine and still fails a call that
    waited out its 20 s)."""
    admin = pyone.OneServer(cloud.endpoint, session=ADMIN)
    vid = admin.vm.allocate("NAME = b\nMEMORY = 64")
    admin.vm.deploy(vid, 0)
    wait_for(lambda: admin.vm.info(vid).LCM_STATE == 2, timeout=5, step=0.01)  # BOOT
    seq, started = now(cloud, ADMIN), time.monotonic()
    while True:
        root = changes(cloud, ADMIN, seq, 20_000)
        seq = int(root.get("SEQ"))
        assert time.monotonic() - started < 10  # DEPLOY's 1 s + the wake-up, far from 20 s
        states = [vm.findtext("LCM_STATE") for vm in root.iterfind("VM_POOL/VM")]
        if states == ["3"]:
            break
    assert time.monotonic() - started > 0.2  # it was held, not answered at once


def test_a_user_sees_only_their_own_vms_and_is_not_woken_by_others(cloud):
    seq = now(cloud, HELEN)
    replies: list[tuple[float, ET.Element]] = []

    def wait() -> None:
        started = time.monotonic()
        root = changes(cloud, HELEN, seq, 1500)
        replies.append((time.monotonic() - started, root))

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(0.3)
    pyone.OneServer(cloud.endpoint, session=DAN).vm.allocate("NAME = d\nMEMORY = 64")
    waiting.join(10)
    ((took, root),) = replies
    assert took >= 1.4 and len(root) == 0  # dan's VM woke nobody with an empty answer
    vid = pyone.OneServer(cloud.endpoint, session=HELEN).vm.allocate("NAME = h\nMEMORY = 64")
    assert vm_ids(changes(cloud, HELEN, seq, 0)) == [vid]
    assert len(changes(cloud, ADMIN, seq, 0).find("VM_POOL")) == 2


def test_an_old_future_or_foreign_epoch_seq_resets(cloud):
    root = changes(cloud, HELEN, 0, 0)
    seq, epoch = int(root.get("SEQ")), root.get("EPOCH")
    assert changes(cloud, HELEN, seq, 0, epoch).get("RESET") == "0"
    assert changes(cloud, HELEN, 1, 0).get("RESET") == "1"  # before this epoch began
    assert changes(cloud, HELEN, seq + 1000, 0).get("RESET") == "1"
    assert changes(cloud, HELEN, seq, 0, "f" * 16).get("RESET") == "1"
    cloud.stop()
    cloud.start()
    again = changes(cloud, HELEN, seq, 0, epoch)
    assert again.get("RESET") == "1" and again.get("EPOCH") != epoch


BAD = [
    ((-1, 0), "since -1 is negative"),
    (("1", 0), r"got \(string, int\)"),
    ((1, "10"), r"expected \(session, int, int\) or \(session, int, int, string\)"),
    ((1,), "wrong parameters"),
    ((1, 0, "e" * 65), "epoch of 65 characters"),
]


def test_bad_arguments_are_refused_with_a_clear_code(cloud):
    for args, message in BAD:
        ok, body, code = call(cloud, HELEN, *args)
        assert not ok and code == 0x1000 and re.search(message, body), (args, body)


def test_wait_ms_is_clamped(cloud):
    seq = now(cloud, HELEN)
    started = time.monotonic()
    assert len(changes(cloud, HELEN, seq, -5000)) == 0  # below 0: at once
    assert time.monotonic() - started < 5  # at once, not held for a wait
    body = xmlrpc.client.dumps((HELEN, seq, 2**31 - 1), "one.system.changes").encode()
    with _post(cloud.port, body) as held:
        held.settimeout(2)
        with pytest.raises(TimeoutError):  # held (30 s at most), neither refused nor answered
            held.recv(1)


def _post(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def test_waiting_calls_are_bounded_and_closed_connections_free_their_place(cloud):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * WAITERS + 100:
        pytest.skip(f"open files limit {hard} < {2 * WAITERS + 100}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2 * WAITERS + 100), hard))
    seq = now(cloud, HELEN)
    body = xmlrpc.client.dumps((HELEN, seq, 30_000), "one.system.changes").encode()
    for _ in range(2):  # the second round only has room if the first one's places were freed
        held = [_post(cloud.port, body) for _ in range(WAITERS)]
        # a call of 100 ms while there is room; refused at once when there is none
        wait_for(lambda: not call(cloud, HELEN, seq, 100)[0], timeout=20, step=0)
        ok, message, code = call(cloud, HELEN, seq, 100)
        assert not ok and code == 0x800 and "1000 calls are already waiting" in message
        for sock in held:
            sock.close()
        wait_for(lambda: call(cloud, HELEN, seq, 100)[0], timeout=10)


def test_pyone_calls_it_and_gets_its_errors_as_exceptions(cloud):
    """pyone binds documents by their root and has no binding for CHANGES (it falls back to an
    empty HISTORY_RECORDS): it can call the method, but reads the reply with xmlrpc.client."""
    one = pyone.OneServer(cloud.endpoint, session=ADMIN)
    assert one.system.changes(0, 0) is not None
    with pytest.raises(pyone.OneApiException, match="since -1 is negative"):
        one.system.changes(-1, 0)


def test_oned_stopping_answers_a_waiting_call(cloud):
    seq = now(cloud, HELEN)
    replies: list[ET.Element] = []
    waiting = threading.Thread(target=lambda: replies.append(changes(cloud, HELEN, seq, 30_000)))
    waiting.start()
    time.sleep(0.5)
    started = time.monotonic()
    cloud.stop()
    waiting.join(20)
    assert len(replies) == 1 and len(replies[0]) == 0 and replies[0].get("RESET") == "0"
    assert time.monotonic() - started < 15
