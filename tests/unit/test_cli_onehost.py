"""onehost: exact listing and show output from literal oned XML, and each command's calls."""

import io
from pathlib import Path

import pytest

from cli import onehost
from cli.common import run_cli
from oned.client import OneCallError

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
    rc = run_cli(onehost.PROG, onehost.DESCRIPTION, onehost.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


HEADER = "  ID NAME                      RVM   TCPU   FCPU   ACPU       TMEM       FMEM STAT"


def test_list_of_monitored_hosts_matches_the_workshop():
    assert onehost.list_lines(fixture("one.hostpool.info_two_hosts.xml")) == [
        HEADER,
        "   0 host01                      0    200    184    184    2017004    1848172   on",
        "   1 host02                      0    200    200    200    2017004    1857172   on",
    ]


# The workshop's (003) two `onehost list` outputs, whitespace as its text extraction left it.
SEED_HEADER = "ID NAME RVM TCPU FCPU ACPU TMEM FMEM STAT"
SEED_MONITORED = [
    "0 host01 0 200 184 184 2017004 1848172 on",
    "1 host02 0 200 200 200 2017004 1857172 on",
]
SEED_NEW = ["0 host01 0 0 0 100 0 0 on", "1 host02 0 0 0 100 0 0 on"]


def test_list_has_the_seed_columns_and_values():
    lines = onehost.list_lines(fixture("one.hostpool.info_two_hosts.xml"))
    assert [line.split() for line in lines] == [s.split() for s in [SEED_HEADER, *SEED_MONITORED]]


def test_never_monitored_hosts_show_zeros_and_100_available_cpu():
    lines = onehost.list_lines(fixture("one.hostpool.info_two_new_hosts.xml"))
    assert [line.split() for line in lines[1:]] == [s.split() for s in SEED_NEW]


def test_list_command_prints_the_table_and_calls_hostpool_info():
    rc, out, err, calls = run(
        ["list"], {"one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml")}
    )
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == HEADER  # plain header: stdout is not a TTY
    assert calls == [("one.hostpool.info",)]


def test_list_option_selects_columns():
    _, out, _, _ = run(
        ["list", "--list", "id,name,stat"],
        {"one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml")},
    )
    assert out.splitlines()[1] == "   0 host01                      on"


def test_xml_option_prints_the_raw_pool():
    text = fixture("one.hostpool.info_two_hosts.xml")
    for argv in (["-x", "list"], ["list", "--xml"]):
        assert run(argv, {"one.hostpool.info": text})[1] == text + "\n"


SHOW = [
    "HOST 0 INFORMATION".ljust(80),
    "ID                    : 0                   ",
    "NAME                  : host01              ",
    "CLUSTER               : default             ",
    "STATE                 : MONITORED           ",
    "IM_MAD                : im_xen              ",
    "VM_MAD                : vmm_xen             ",
    "TM_MAD                : tm_nfs              ",
    "",
    "HOST SHARES".ljust(80),
    "MAX MEM               : 2017004             ",
    "USED MEM (REAL)       : 168832              ",
    "USED MEM (ALLOCATED)  : 0                   ",
    "MAX CPU               : 200                 ",
    "USED CPU (REAL)       : 16                  ",
    "USED CPU (ALLOCATED)  : 0                   ",
    "RUNNING VMS           : 0                   ",
    "",
    "MONITORING INFORMATION".ljust(80),
    "ARCH=x86_64",
    "CPUSPEED=2000",
    "FREECPU=184.0",
    "FREEMEMORY=1848172",
    "HOSTNAME=host01",
    "HYPERVISOR=xen",
    "MODELNAME=Intel(R) Core(TM)2 Duo CPU",
    "NETRX=0",
    "NETTX=0",
    "TOTALCPU=200",
    "TOTALMEMORY=2017004",
    "USEDCPU=16.0",
    "USEDMEMORY=168832",
]


def test_show_prints_information_shares_and_monitoring():
    assert onehost.show_lines(fixture("one.host.info_host01.xml")) == SHOW


def test_show_command_resolves_a_name_through_the_pool():
    rc, out, _, calls = run(
        ["show", "host01"],
        {
            "one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml"),
            "one.host.info": fixture("one.host.info_host01.xml"),
        },
    )
    assert rc == 0
    assert out.splitlines() == SHOW
    assert calls == [("one.hostpool.info",), ("one.host.info", 0)]


def test_create_is_silent_and_verbose_prints_the_id():
    answers = {"one.host.allocate": 7}
    rc, out, _, calls = run(["create", "host01", "im_xen", "vmm_xen", "tm_nfs"], answers)
    assert (rc, out) == (0, "")
    assert calls == [("one.host.allocate", "host01", "im_xen", "vmm_xen", "tm_nfs")]
    for argv in (["-v", "create", "h", "i", "v", "t"], ["create", "-v", "h", "i", "v", "t"]):
        assert run(argv, answers)[1] == "ID: 7\n"


def test_delete_of_a_host_running_vms_disables_it_instead():
    rc, out, _, calls = run(
        ["delete", "0"],
        {"one.host.info": fixture("one.host.info_host01_running_vm.xml"), "one.host.enable": None},
    )
    assert rc == 0
    assert out == "Host still has associated VMs. It will be disabled instead.\n"
    assert calls == [("one.host.info", 0), ("one.host.enable", 0, False)]


def test_delete_of_an_idle_host_deletes_it():
    rc, out, _, calls = run(
        ["-v", "delete", "0"],
        {"one.host.info": fixture("one.host.info_host01.xml"), "one.host.delete": None},
    )
    assert (rc, out) == (0, "Host deleted\n")
    assert calls[-1] == ("one.host.delete", 0)


def test_enable_and_disable_take_names_and_ranges():
    answers = {
        "one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml"),
        "one.host.enable": None,
    }
    assert run(["enable", "host02"], answers)[3] == [
        ("one.hostpool.info",),
        ("one.host.enable", 1, True),
    ]
    assert run(["disable", "0-1"], answers)[3] == [
        ("one.host.enable", 0, False),
        ("one.host.enable", 1, False),
    ]


def test_an_unknown_host_name_is_one_error_line_and_exit_255():
    rc, out, err, _ = run(
        ["enable", "x"], {"one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml")}
    )
    assert (rc, out, err) == (255, "", 'Error: host "x" not found\n')


def test_an_error_from_oned_is_printed_verbatim():
    def refuse(*_params):
        raise OneCallError("[one.host.allocate] User not authorized", 0x200)

    rc, _, err, _ = run(["create", "h", "i", "v", "t"], {"one.host.allocate": refuse})
    assert (rc, err) == (255, "Error: [one.host.allocate] User not authorized\n")


def test_missing_arguments_are_a_one_line_usage_error():
    rc, out, err, calls = run(["create", "host01", "im_xen"])
    assert rc == 255 and out == "" and calls == []
    assert err == "Error: onehost create: the following arguments are required: vmm_mad, tm_mad\n"


def test_no_command_and_unknown_command_are_usage_errors():
    assert run([])[2] == "Error: onehost: missing command (see 'onehost --help')\n"
    rc, _, err, _ = run(["frobnicate"])
    assert rc == 255 and err.startswith("Error: onehost: argument <command>: invalid choice")
    assert err.count("\n") == 1


def test_help_lists_every_command_with_its_arguments_and_the_environment(capsys):
    assert onehost.main(["--help"]) == 0
    text = capsys.readouterr().out
    for usage in (
        "create <hostname> <im_mad> <vmm_mad> <tm_mad>",
        "show <name|id>...",
        "delete <name|id>...",
        "list [--list <col,...>]",
        "enable <name|id>...",
        "disable <name|id>...",
        "top [--list <col,...>] [--delay <seconds>]",
    ):
        assert f"  {usage}\n" in text
    assert "ONE_XMLRPC" in text and "ONE_AUTH" in text


def test_list_help_describes_the_columns(capsys):
    assert onehost.main(["list", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--list COLUMNS" in text
    assert "acpu ( 6) => Available cpu percentage" in text


def test_a_bad_list_column_is_an_error():
    rc, _, err, _ = run(["list", "--list", "id,nope"], {"one.hostpool.info": "<HOST_POOL/>"})
    assert rc == 255 and err.startswith("Error: unknown column nope")


def test_top_relists_until_interrupted(monkeypatch):
    from cli import table

    def two_rounds(render, write, delay):
        return table.top(render, write, delay, sleep=lambda _d: None, rounds=2)

    monkeypatch.setattr(onehost, "top", two_rounds)
    rc, out, _, calls = run(
        ["top", "--delay", "5"], {"one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml")}
    )
    assert rc == 0
    assert out.count(table.CLEAR_SCREEN) == 2 and out.count(HEADER) == 2
    assert calls == [("one.hostpool.info",)] * 2


@pytest.mark.parametrize("state, stat", [(0, "on"), (1, "on"), (2, "on"), (3, "err"), (4, "off")])
def test_stat_column_short_names(state, stat):
    xml = fixture("one.hostpool.info_two_hosts.xml").replace(
        "<STATE>2</STATE>", f"<STATE>{state}</STATE>", 1
    )
    assert onehost.list_lines(xml)[1].endswith(f" {stat:>4}")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_header_is_bold_and_underlined():
    fake = FakeOned({"one.hostpool.info": fixture("one.hostpool.info_two_hosts.xml")})
    out = Terminal()
    run_cli(onehost.PROG, onehost.DESCRIPTION, onehost.COMMANDS, ["list"], lambda: fake, out)
    assert out.getvalue().splitlines()[0] == "\33[1m\33[4m" + HEADER + "\33[0m"
