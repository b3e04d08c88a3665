"""oneuser: exact listing from literal oned XML, and each command's calls."""

import io
from pathlib import Path

from cli import oneuser
from cli.common import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


class FakeOned:
    """Answers each method from a table (a value, or a function of the params); records calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, *params):
        self.calls.append((method, *params))
        answer = self.answers[method]
        return answer(*params) if callable(answer) else answer


def run(argv, answers=None):
    fake = FakeOned(answers or {})
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(oneuser.PROG, oneuser.DESCRIPTION, oneuser.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


HELEN_PASSWORD = "pbkdf2_sha256$260000$aGVsZW4tc2FsdA$m4VtZ7qR2wL9xB1cN8kP3sD6fH0jG5aY2eT4uI7oQwE"
POOL = {"one.userpool.info": fixture("one.userpool.info_three_users.xml")}


def test_list_prints_id_user_password_and_enable_as_true_or_false():
    assert oneuser.list_lines(POOL["one.userpool.info"]) == [
        "  ID USER            PASSWORD                                           ENABLE",
        "   0 oneadmin        pbkdf2_sha256$260000$b25lYWRtaW4tc2FsdA$Xq0xL1ZkB3   True",
        "   2 helen           pbkdf2_sha256$260000$aGVsZW4tc2FsdA$m4VtZ7qR2wL9xB   True",
        "   3 bob             pbkdf2_sha256$260000$Ym9iLXNhbHQ$Kc2nV8xZ1qW4eR7tY  False",
    ]


def test_list_command_calls_userpool_info():
    rc, out, _, calls = run(["list"], POOL)
    assert rc == 0 and out.splitlines()[2].split()[-1] == "True"
    assert calls == [("one.userpool.info",)]


def test_create_sends_the_password_as_typed_and_prints_the_id_with_or_without_v():
    rc, out, _, calls = run(["create", "helen", "mypass"], {"one.user.allocate": 2})
    assert (rc, out) == (0, "ID: 2\n")
    assert calls == [("one.user.allocate", "helen", "mypass")]
    assert run(["-v", "create", "helen", "mypass"], {"one.user.allocate": 2})[1] == "ID: 2\n"


def test_delete_resolves_a_user_name():
    rc, _, _, calls = run(["delete", "helen"], {**POOL, "one.user.delete": None})
    assert rc == 0
    assert calls == [("one.userpool.info",), ("one.user.delete", 2)]


def test_passwd_resolves_the_user_and_sends_the_new_password():
    rc, out, _, calls = run(["-v", "passwd", "bob", "s3cret"], {**POOL, "one.user.passwd": None})
    assert (rc, out) == (0, "Password changed\n")
    assert calls[-1] == ("one.user.passwd", 3, "s3cret")


def test_unknown_user_is_an_error():
    assert run(["delete", "mallory"], POOL)[:3] == (255, "", 'Error: user "mallory" not found\n')


def test_show_prints_the_user_fields():
    assert oneuser.show_lines(fixture("one.user.info_helen.xml")) == [
        "USER 2 INFORMATION".ljust(80),
        "ID             : 2                   ",
        "NAME           : helen               ",
        "GROUP          : users               ",
        "PASSWORD       : " + HELEN_PASSWORD,
        "AUTH_DRIVER    : core                ",
        "ENABLED        : True                ",
    ]


def test_passwd_needs_two_arguments():
    rc, _, err, _ = run(["passwd", "bob"])
    assert rc == 255
    assert err == "Error: oneuser passwd: the following arguments are required: password\n"
