"""A real one-dashboard in front of a real oned (dummy drivers), driven over HTTP as a browser
would (share/doc/dashboard.md): sign-in, cookie flags, sessions, CSRF, every route's shape,
actions as the signed-in user only, the live stream, oned out of reach, hostile input."""

from __future__ import annotations

import signal
import time

import pyone
import pytest

from tests.functional.dashboard_setup import Client, start_dashboard, stop_all, stop_one
from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_server import self_signed
from tests.waiting import wait_for

ADMIN = ("oneadmin", "onecloud")
HELEN, BOB = ("helen", "helen-pw"), ("bob", "bob-pw")
SCRIPT = "<script>alert('x')</script> & <b>"
VM = 'NAME = "{name}"\nMEMORY = 64\nCPU = 0.1\n'
VM_KEYS = {"id", "uid", "owner", "name", "state", "host", "ip", "cpu", "memory"}
VM_KEYS |= {"stime", "etime", "reason"}
HOST_KEYS = {"id", "name", "state", "im_mad", "vm_mad", "tm_mad", "rvm", "last_mon", "error"}
HOST_KEYS |= {f"{kind}_{part}" for kind in ("cpu", "mem") for part in ("total", "used", "alloc")}


class Cloud:
    def __init__(self, oned: OnedProcess, url: str, process) -> None:
        self.oned, self.url, self.process = oned, url, process
        self.admin = pyone.OneServer(oned.endpoint, session=":".join(ADMIN))

    def client(self, who=None) -> Client:
        client = Client(self.url)
        if who:
            assert client.sign_in(*who)[0] == 200
        return client


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    oned = OnedProcess(tmp_path_factory.mktemp("dashboard") / "one")
    oned.set(HOST_MONITORING_INTERVAL=1).start()
    try:
        admin = pyone.OneServer(oned.endpoint, session=":".join(ADMIN))
        for user, password in (HELEN, BOB):
            admin.user.allocate(user, password, "core", [])
        admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
        url, process = start_dashboard(oned)
        yield Cloud(oned, url, process)
    finally:
        stop_all()
        oned.stop()


def test_a_wrong_password_is_refused_with_one_clear_message(cloud):
    client = Client(cloud.url)
    for user, password in (("helen", "wrong"), ("nobody", "x"), ("helen", ""), ("a:b", "x")):
        status, answer = client.sign_in(user, password)
        assert (status, answer) == (401, {"error": "wrong user name or password"})
    assert client.get("/api/session") == (401, {"error": "not signed in"})


def test_sign_in_gives_a_strict_cookie_and_the_session(cloud):
    client = Client(cloud.url)
    status, answer, response = client.request(
        "POST", "/api/login", {"user": "helen", "password": "helen-pw"}
    )
    assert status == 200
    assert set(answer) == {"user", "uid", "admin", "csrf"} and answer["admin"] is False
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith("one_dashboard=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert f"; {flag}" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test
    client.cookie = cookie.split(";")[0]
    assert client.get("/api/session") == (200, answer)
    assert Client(cloud.url).sign_in(*ADMIN)[1]["admin"] is True


def test_sign_out_needs_the_token_and_forgets_the_session(cloud):
    client = cloud.client(HELEN)
    assert client.request("POST", "/api/logout", {}, {"X-CSRF-Token": "x"})[0] == 403
    status, _, response = client.request("POST", "/api/logout", {})
    assert status == 204 and "Max-Age=0" in response.getheader("Set-Cookie")
    assert client.get("/api/vms")[0] == 401


@pytest.mark.parametrize("cookie", ["one_dashboard=forged", "one_dashboard=", "other=1", ""])
def test_a_forged_or_missing_cookie_is_401(cloud, cookie):
    status, answer, _ = Client(cloud.url).request("GET", "/api/vms", headers={"Cookie": cookie})
    assert (status, answer) == (401, {"error": "not signed in"})


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_an_action_without_the_right_csrf_token_is_403_and_does_nothing(cloud, token):
    client = cloud.client(HELEN)
    before = len(client.get("/api/vms")[1]["vms"])
    client.csrf = token or ""
    headers = {} if token is None else {"X-CSRF-Token": token}
    status, answer, _ = client.request(
        "POST", "/api/vms", {"template": VM.format(name="x")}, headers
    )
    assert (status, answer) == (403, {"error": "missing or wrong CSRF token"})
    assert len(cloud.client(HELEN).get("/api/vms")[1]["vms"]) == before


def test_every_read_route_has_the_contracts_shape(cloud):
    client = cloud.client(ADMIN)
    assert client.post("/api/vms", {"template": VM.format(name="shape")})[0] == 201
    wait_for(lambda: client.get("/api/hosts")[1]["hosts"][0]["last_mon"], 20)
    status, hosts = client.get("/api/hosts")
    assert status == 200 and isinstance(hosts["seq"], int)
    assert set(hosts["hosts"][0]) == HOST_KEYS and hosts["hosts"][0]["state"] == "on"
    status, vms = client.get("/api/vms")
    assert status == 200 and all(set(v) == VM_KEYS for v in vms["vms"])
    vid = vms["vms"][-1]["id"]
    status, one = client.get(f"/api/vms/{vid}")
    assert status == 200 and set(one) == VM_KEYS | {"template", "history", "log"}
    assert "NAME=shape" in one["template"] and isinstance(one["history"], list)
    status, overview = client.get("/api/overview")
    assert status == 200 and set(overview) == {"hosts", "vms", "capacity"}
    assert overview["hosts"]["on"] == 1 and sum(overview["vms"].values()) == len(vms["vms"])
    assert set(overview["capacity"]) == {"cpu_used", "cpu_total", "mem_used", "mem_total"}
    assert client.get("/api/users")[1]["users"][:3] == [
        {"id": 0, "name": "oneadmin", "enabled": True},
        {"id": 1, "name": "helen", "enabled": True},
        {"id": 2, "name": "bob", "enabled": True},
    ]
    assert client.get("/api/images") == (200, {"images": []})
    assert client.get("/api/vnets") == (200, {"vnets": []})
    assert client.get("/api/templates")[0] == 200


def test_a_network_and_its_leases(cloud):
    nid = cloud.admin.vn.allocate(
        'NAME = "lan"\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\n'
        "LEASES = [ IP = 10.0.0.2 ]\n"
    )
    client = cloud.client(ADMIN)
    nets = client.get("/api/vnets")[1]["vnets"]
    assert [(n["name"], n["type"], n["bridge"]) for n in nets] == [("lan", "Fixed", "br0")]
    status, net = client.get(f"/api/vnets/{nid}")
    assert status == 200 and [lease["ip"] for lease in net["leases"]] == ["10.0.0.1", "10.0.0.2"]
    # bob sees in the dashboard what oned shows him, no more
    bob = pyone.OneServer(cloud.oned.endpoint, session=":".join(BOB))
    try:
        shown = bool(bob.vn.info(nid))
    except pyone.OneException:
        shown = False
    assert cloud.client(BOB).get(f"/api/vnets/{nid}")[0] == (200 if shown else 403)


def test_a_user_creates_a_vm_and_acts_on_it(cloud):
    client = cloud.client(HELEN)
    status, created = client.post("/api/vms", {"template": VM.format(name="mine")})
    assert status == 201
    vid = created["id"]
    assert client.post(f"/api/vms/{vid}/action", {"action": "hold"}) == (200, {"ok": True})
    assert client.get(f"/api/vms/{vid}")[1]["state"] == "hold"
    assert client.post(f"/api/vms/{vid}/action", {"action": "release"}) == (200, {"ok": True})
    status, answer = client.post(f"/api/vms/{vid}/action", {"action": "resume"})
    assert status == 409 and "resume" in answer["error"].lower()  # oned's refusal, one line
    assert client.post(f"/api/vms/{vid}/action", {"action": "reboot-now"})[0] == 400
    assert client.post("/api/vms", {"template": ""})[0] == 400
    status, answer = client.post("/api/vms", {"template": "MEMORY = [ oops"})
    assert status == 400 and answer["error"]


def test_a_user_cannot_see_or_act_on_another_users_vm_through_the_dashboard(cloud):
    vid = cloud.client(HELEN).post("/api/vms", {"template": VM.format(name="helens")})[1]["id"]
    bob = cloud.client(BOB)
    assert vid not in [v["id"] for v in bob.get("/api/vms")[1]["vms"]]
    assert bob.get(f"/api/vms/{vid}")[0] in (403, 404)
    for action in ("hold", "delete", "shutdown", "stop"):
        status, answer = bob.post(f"/api/vms/{vid}/action", {"action": action})
        assert status in (403, 404) and answer["error"]
    info = cloud.admin.vm.info(vid)
    assert (info.STATE, info.NAME) == (1, "helens")  # still PENDING, untouched


def test_oneadmin_only_routes_are_refused_to_users_and_work_for_oneadmin(cloud):
    helen = cloud.client(HELEN)
    assert helen.get("/api/users")[0] == 403
    for verb in ("disable", "enable"):
        assert helen.post(f"/api/hosts/0/{verb}")[0] == 403
    assert cloud.admin.host.info(0).STATE != 4
    admin = cloud.client(ADMIN)
    assert admin.post("/api/hosts/0/disable") == (200, {"ok": True})
    assert admin.get("/api/hosts")[1]["hosts"][0]["state"] == "off"
    assert admin.post("/api/hosts/0/enable") == (200, {"ok": True})
    wait_for(lambda: admin.get("/api/hosts")[1]["hosts"][0]["state"] == "on", 10)
    assert admin.post("/api/hosts/99/enable")[0] == 404


def test_names_with_html_come_back_as_the_same_text(cloud):
    client = cloud.client(HELEN)
    vid = client.post("/api/vms", {"template": VM.format(name=SCRIPT.replace('"', "'"))})[1]["id"]
    assert client.get(f"/api/vms/{vid}")[1]["name"] == SCRIPT.replace('"', "'")
    listed = [v["name"] for v in client.get("/api/vms")[1]["vms"] if v["id"] == vid]
    assert listed == [SCRIPT.replace('"', "'")]


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        (b"x" * (1 << 20 + 1), "application/json", 413),
        (b'{"template": "x"}', "text/plain", 415),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"[" * 200_000 + b"]" * 200_000, "application/json", 400),
    ],
)
def test_bad_bodies_are_refused_before_oned_is_asked(cloud, body, kind, status):
    client = cloud.client(HELEN)
    got, answer, _ = client.request("POST", "/api/vms", body, {"Content-Type": kind})
    assert got == status and set(answer) == {"error"}


def test_unknown_paths_and_methods(cloud):
    client = cloud.client(HELEN)
    assert client.get("/api/nothing")[0] == 404
    assert client.request("DELETE", "/api/vms")[0] == 405
    assert client.get("/api/vms/99999")[0] == 404
    status, _, response = client.request("GET", "/../../etc/passwd")
    assert status == 404


def test_static_files_carry_a_strict_content_security_policy(cloud):
    status, _, response = Client(cloud.url).request("GET", "/")
    csp = response.getheader("Content-Security-Policy")
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    if status == 200:  # the pages (E2) are there
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert response.getheader("Cache-Control") == "no-cache"
        since = {"If-Modified-Since": response.getheader("Last-Modified")}
        assert Client(cloud.url).request("GET", "/", headers=since)[0] == 304
    assert Client(cloud.url).request("POST", "/index.html", {})[0] == 405


def test_the_stream_delivers_a_vm_state_change_within_two_seconds(cloud):
    client = cloud.client(HELEN)
    vid = client.post("/api/vms", {"template": VM.format(name="live")})[1]["id"]
    client.events(lambda found: ("reset", {}) in found, timeout=10)
    acted = []

    def until(found):
        if ("reset", {}) in found and not acted:
            acted.append(time.monotonic())
            cloud.admin.vm.action("hold", vid)
        return any(name == "vm" and d["id"] == vid and d["state"] == "hold" for name, d in found)

    client.events(until, timeout=10)
    assert time.monotonic() - acted[0] < 2


def test_the_log_names_requests_and_never_passwords_or_cookies(cloud):
    client = cloud.client(HELEN)
    client.get("/api/vms")
    log = wait_for(lambda: "GET /api/vms helen 200" in cloud.process.log and cloud.process.log)
    assert "helen-pw" not in log and client.cookie.split("=", 1)[1] not in log
    assert client.csrf not in log


def test_session_expiry_and_https_cookies(tmp_path):
    oned = OnedProcess(tmp_path / "one").start()
    key, cert = self_signed(tmp_path)
    process = None  # this test's own: the module's shared dashboard keeps running
    try:
        url, process = start_dashboard(
            oned, session_lifetime=2, ssl_cert=str(cert), ssl_key=str(key)
        )
        client = Client(url)
        status, _, response = client.request(
            "POST", "/api/login", {"user": ADMIN[0], "password": ADMIN[1]}
        )
        assert status == 200 and "; Secure" in response.getheader("Set-Cookie")
        assert response.getheader("Strict-Transport-Security")
        client.cookie = response.getheader("Set-Cookie").split(";")[0]
        assert client.get("/api/vms")[0] == 200
        wait_for(lambda: client.get("/api/vms")[0] == 401, 10, step=0.2)
    finally:
        stop_one(process)
        oned.stop()


def test_oned_out_of_reach_is_a_502_the_pages_can_show(tmp_path):
    oned = OnedProcess(tmp_path / "one").start()
    process = None  # this test's own: the module's shared dashboard keeps running
    try:
        url, process = start_dashboard(oned)
        client = Client(url)
        assert client.sign_in(*ADMIN)[0] == 200
        client.events(lambda found: ("reset", {}) in found)
        oned.stop(signal.SIGKILL)
        status, answer = client.get("/api/vms")
        assert status == 502 and answer["oned_down"] is True
        assert answer["error"].startswith(f"cannot reach oned at {oned.endpoint}")
        down = client.events(lambda found: any(n == "oned" for n, _ in found), timeout=10)
        name, event = down[-1]
        assert name == "oned" and event["up"] is False
        assert event["error"].startswith(f"cannot reach oned at {oned.endpoint}")
        assert Client(url).sign_in(*ADMIN)[0] == 502
        oned.start()
        back = client.events(lambda found: found[-1:] == [("reset", {})], timeout=20)
        assert back[-2:] == [("oned", {"up": True}), ("reset", {})]  # then the page fetches
        assert client.get("/api/vms")[0] == 200
    finally:
        stop_one(process)
        oned.stop()


def test_a_changed_password_ends_the_session_at_its_next_call(cloud):
    cloud.admin.user.allocate("carol", "carol-pw", "core", [])
    client = cloud.client(("carol", "carol-pw"))
    assert client.get("/api/vms")[0] == 200  # from the feed's copy, warm since sign-in
    uid = next(u.ID for u in cloud.admin.userpool.info().USER if u.NAME == "carol")
    cloud.admin.user.passwd(uid, "new-pw")
    assert client.get("/api/vms")[0] == 401
    assert client.get("/api/session") == (401, {"error": "not signed in"})
