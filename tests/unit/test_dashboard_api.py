"""The dashboard's pure pieces around oned: refusals as HTTP statuses, the routes, bodies checked
before oned is asked, vm.log's tail, the shipped examples, the pool copy, static paths."""

from __future__ import annotations

import pytest

from dashboard import api, web
from dashboard.oned import DashboardError, Oned, refusal, unreachable
from dashboard.pool_copy import PoolCopy
from oned.client import OneCallError, OneClientError

CALLER = api.Caller("helen:pw", 3, False)


def nowhere(tmp_path) -> api.Context:
    """A context whose oned cannot be reached: a body refused before any call shows it."""
    return api.Context(Oned("http://127.0.0.1:9/RPC2", timeout=1), str(tmp_path), str(tmp_path))


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        (0x100, "[one.vm.info] User couldn't be authenticated, aborting call.", 401),
        (0x200, "[one.vm.action] User [3] : Not authorized to perform MANAGE VM [7].", 403),
        (0x400, "[one.vm.info] Error getting virtual machine [99].", 404),
        (0x800, "[one.vm.action] Wrong state to perform action", 409),
        (0x1000, "[one.vm.migrate] bad host", 400),
        (0x2000, "[one.vm.allocate] Error parsing VM template: syntax error", 400),
        (0x2000, "[one.vm.allocate] Internal error, see oned.log", 502),
        (0x4000, "[x] something new", 409),
    ],
)
def test_oneds_codes_become_http_statuses_and_its_message_loses_the_method(code, message, status):
    error = refusal(OneCallError(message, code))
    assert error.status == status
    assert error.body() == {"error": message.split("] ", 1)[1]}


def test_a_refusal_is_one_line_and_bounded():
    error = refusal(OneCallError("[m] line one\nline\ttwo" + "x" * 1000, 0x800))
    assert "\n" not in error.message and len(error.message) == 500


def test_oned_out_of_reach_is_502_with_the_banner_flag():
    error = unreachable(OneClientError("cannot reach oned at http://h:2633/RPC2: refused"))
    assert error.status == 502
    assert error.body() == {
        "error": "cannot reach oned at http://h:2633/RPC2: refused",
        "oned_down": True,
    }


def test_a_real_unreachable_oned_is_502(tmp_path):
    with pytest.raises(DashboardError) as err:
        api.vms(nowhere(tmp_path), CALLER)
    assert err.value.status == 502 and err.value.oned_down
    assert err.value.message.startswith("cannot reach oned at http://127.0.0.1:9/RPC2")


@pytest.mark.parametrize(
    ("method", "path", "found"),
    [
        ("GET", "/api/vms", ("vms", ())),
        ("GET", "/api/vms/12", ("vm", (12,))),
        ("POST", "/api/vms/12/action", ("vm_action", (12,))),
        ("POST", "/api/hosts/3/disable", ("run", (3,))),
        ("GET", "/api/vnets/0", ("vnet", (0,))),
        ("GET", "/api/vms/-1", None),
        ("GET", "/api/vms/1e3", None),
        ("GET", "/api/vms/12345678901", None),
        ("GET", "/api/vms/12/", None),
        ("DELETE", "/api/vms/12", None),
    ],
)
def test_routes(method, path, found):
    route = api.find(method, path)
    assert (route[0].run.__name__, route[1]) == found if found else route is None


def test_a_known_path_under_another_method_is_told_apart():
    assert api.allowed("/api/vms") == ["GET", "POST"]
    assert api.allowed("/api/nothing") == []


@pytest.mark.parametrize(
    "body",
    [{}, {"action": "reboot-now"}, {"action": 3}, {"action": "migrate"},
     {"action": "migrate", "host": "1"}, {"action": "livemigrate", "host": True},
     {"action": "migrate", "host": -1}],
)  # fmt: skip
def test_a_bad_action_is_400_before_oned_is_asked(tmp_path, body):
    with pytest.raises(DashboardError) as err:
        api.vm_action(nowhere(tmp_path), CALLER, 7, body)
    assert err.value.status == 400 and not err.value.oned_down


@pytest.mark.parametrize("template", [None, "", "   ", 12, "x" * (api.MAX_TEMPLATE + 1)])
def test_a_bad_template_is_400_before_oned_is_asked(tmp_path, template):
    with pytest.raises(DashboardError) as err:
        api.create_vm(nowhere(tmp_path), CALLER, {"template": template})
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("user", "password"), [("", "x"), ("a", ""), ("a:b", "x"), ("a\nb", "x"), ("a", "p\0")]
)
def test_a_malformed_sign_in_is_the_same_401_without_asking_oned(tmp_path, user, password):
    with pytest.raises(DashboardError) as err:
        api.login(nowhere(tmp_path), user, password)
    assert (err.value.status, err.value.message) == (401, "wrong user name or password")


def test_vm_log_is_the_last_lines_of_a_long_file_and_empty_without_one(tmp_path):
    assert api.vm_log(str(tmp_path), 4) == ""
    (tmp_path / "4").mkdir()
    lines = [f"line {n} " + "x" * 100 for n in range(400)]
    (tmp_path / "4" / "vm.log").write_text("\n".join(lines) + "\n")
    assert api.vm_log(str(tmp_path), 4).split("\n") == lines[-api.LOG_LINES :]
    long = [f"line {n} " + "x" * 4000 for n in range(400)]  # 1.6 MB: only its end is read
    (tmp_path / "4" / "vm.log").write_text("\n".join(long) + "\n")
    tail = api.vm_log(str(tmp_path), 4).split("\n")
    assert 50 < len(tail) < api.LOG_LINES and tail == long[-len(tail) :]
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "vm.log").write_bytes(b"ok\n\xff\xfe bad utf-8\n")
    assert api.vm_log(str(tmp_path), 5) == "ok\n\ufffd\ufffd bad utf-8"


def test_the_examples_are_the_vm_templates_only(tmp_path):
    (tmp_path / "ttylinux.one").write_text("NAME = ttylinux\nMEMORY = 64\n")
    (tmp_path / "net.one").write_text("NAME = lan\nTYPE = FIXED\nLEASES = [ IP = 10.0.0.1 ]\n")
    (tmp_path / "ranged.one").write_text("NAME = r\n  network_address = 10.0.0.0\n")
    (tmp_path / "notes.txt").write_text("NAME = x\n")
    (tmp_path / "big.one").write_text("NAME = " + "x" * api.MAX_TEMPLATE)
    ctx = nowhere(tmp_path)
    assert api.templates(ctx, CALLER) == (
        200, {"templates": [{"name": "ttylinux", "text": "NAME = ttylinux\nMEMORY = 64\n"}]}
    )  # fmt: skip
    gone = api.Context(ctx.oned, ctx.var, str(tmp_path / "none"))
    assert api.templates(gone, CALLER) == (200, {"templates": []})


def test_the_pool_copy_follows_the_feed():
    copy = PoolCopy()
    assert not copy.ready
    copy.load([{"id": 5, "state": "pend"}, {"id": 2, "state": "runn"}], [{"id": 0}])
    copy.apply(
        [
            ("vm", {"id": 5, "state": "runn"}),
            ("vm", {"id": 9, "state": "pend"}),
            ("removed", {"kind": "vm", "id": 2}),
            ("removed", {"kind": "image", "id": 2}),
            ("vnet", {"id": 1}),
            ("host", {"id": 1}),
        ]
    )
    assert copy.listing("vm") == [{"id": 5, "state": "runn"}, {"id": 9, "state": "pend"}]
    assert copy.listing("host") == [{"id": 0}, {"id": 1}]
    copy.forget()
    assert not copy.ready and copy.listing("vm") == []


@pytest.mark.parametrize(
    "path", ["/../x", "/a/../../etc/passwd", "/.hidden", "//etc/passwd", "/x\\y", "/a\0", "/nope"]
)
def test_static_paths_outside_the_folder_or_hidden_are_not_found(tmp_path, path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("<p>")
    (tmp_path / "static" / ".hidden").write_text("secret")
    assert web.static_file(path, str(tmp_path / "static")) is None


def test_static_paths_inside_are_found_and_a_symlink_out_is_not(tmp_path):
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<p>")
    (static / "js" / "app.js").write_text("1")
    (tmp_path / "secret").write_text("s")
    (static / "out.js").symlink_to(tmp_path / "secret")
    assert web.static_file("/", str(static)) == str(static / "index.html")
    assert web.static_file("/js/app.js", str(static)) == str(static / "js" / "app.js")
    assert web.static_file("/js", str(static)) is None  # a folder: no listing
    assert web.static_file("/out.js", str(static)) is None
