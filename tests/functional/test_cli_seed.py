"""The seed workshop's commands (shared/seeds/003), typed as written there, against a real oned."""

from __future__ import annotations

import re


def lines(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_oneuser_create_list_delete_as_in_the_seed(oned):
    """oneuser create helen mypass / list / delete helen."""
    assert oned.run_cli("oneuser", "create", "helen", "mypass").returncode == 0
    out = lines(oned.run_cli("oneuser", "list"))
    assert out[0].split() == ["ID", "USER", "PASSWORD", "ENABLE"]
    rows = [row.split() for row in out[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("0", "oneadmin", "True"),
        ("1", "helen", "True"),
    ]
    assert "mypass" not in "\n".join(out)
    assert oned.run_cli("oneuser", "delete", "helen").returncode == 0
    assert [row.split()[1] for row in lines(oned.run_cli("oneuser", "list"))[1:]] == ["oneadmin"]


def test_helen_works_with_the_password_she_was_given(oned, tmp_path):
    """'User "Helen" should put helen:mypass in $ONE_AUTH': then her commands work."""
    oned.run_cli("oneuser", "create", "helen", "mypass")
    auth = tmp_path / "helen_auth"
    auth.write_text("helen:mypass\n")
    env = {**oned.env, "ONE_AUTH": str(auth)}
    template = tmp_path / "vm.one"
    template.write_text("NAME = hers\nMEMORY = 64\n")
    assert oned.run_cli("onevm", "create", str(template), env=env).returncode == 0
    rows = lines(oned.run_cli("onevm", "list", env=env))[1:]
    assert [r.split()[1:3] for r in rows] == [["helen", "hers"]]
    denied = oned.run_cli("oneuser", "list", env=env)
    assert denied.returncode != 0
    assert denied.stderr.startswith("Error: ") and len(denied.stderr.splitlines()) == 1


def test_onehost_create_and_list_shows_unmonitored_hosts_as_in_the_seed(oned):
    """onehost create host01 im_kvm vmm_kvm tm_nfs (xen in the seed), then onehost list."""
    for host in ("host01", "host02"):
        assert (
            oned.run_cli("onehost", "create", host, "im_kvm", "vmm_kvm", "tm_nfs").returncode == 0
        )
    out = lines(oned.run_cli("onehost", "list"))
    assert out[0].split() == ["ID", "NAME", "RVM", "TCPU", "FCPU", "ACPU", "TMEM", "FMEM", "STAT"]
    assert [row.split() for row in out[1:]] == [
        ["0", "host01", "0", "0", "0", "100", "0", "0", "on"],
        ["1", "host02", "0", "0", "0", "100", "0", "0", "on"],
    ]


def test_onehost_disable_enable_show_and_delete(oned):
    """disable shows off, enable shows on again, show names the drivers, delete removes."""
    oned.run_cli("onehost", "create", "host01", "im_kvm", "vmm_kvm", "tm_nfs")
    assert oned.run_cli("onehost", "disable", "host01").returncode == 0
    assert lines(oned.run_cli("onehost", "list"))[1].split()[-1] == "off"
    assert oned.run_cli("onehost", "enable", "0").returncode == 0
    # enabled: "on", unless its first monitoring already failed (host01 does not exist): "err"
    assert lines(oned.run_cli("onehost", "list"))[1].split()[-1] in ("on", "err")
    show = "\n".join(lines(oned.run_cli("onehost", "show", "0")))
    assert "HOST 0 INFORMATION" in show
    assert re.search(r"TM_MAD\s*: tm_nfs", show)
    assert oned.run_cli("onehost", "delete", "host01").returncode == 0
    assert lines(oned.run_cli("onehost", "list"))[1:] == []


def test_onevm_create_list_and_show_the_seed_ttylinux(oned, tmp_path):
    """onevnet create real.net; onevm create ttylinux.one; onevm list shows it pending; onevm
    show prints the template with the NIC's lease."""
    network = tmp_path / "real.net"
    network.write_text(
        'NAME = "One-TD"\nTYPE = RANGED\nBRIDGE = xenbr0\nNETWORK_SIZE      = 125\n'
        "NETWORK_ADDRESS = 192.168.1.128\n"
    )
    assert oned.run_cli("onevnet", "create", str(network)).returncode == 0
    template = tmp_path / "ttylinux.one"
    template.write_text(
        "NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\n"
        'DISK = [ source = "/srv/cloud/images/ttylinux/ttylinux.img", target = "hda", '
        'readonly = "no" ]\nNIC = [ NETWORK = "One-TD" ]\nFEATURES = [ acpi="no" ]\n'
    )
    assert oned.run_cli("onevm", "create", str(template)).returncode == 0
    out = lines(oned.run_cli("onevm", "list"))
    assert out[0].split() == ["ID", "USER", "NAME", "STAT", "CPU", "MEM", "HOSTNAME", "TIME"]
    row = out[1].split()
    assert row[:6] == ["0", "oneadmin", "ttylinux", "pend", "0", "0"]
    assert re.fullmatch(r"\d\d", row[6]) and re.fullmatch(r"\d\d:\d\d:\d\d", row[7])
    show = "\n".join(lines(oned.run_cli("onevm", "show", "0")))
    assert "VIRTUAL MACHINE 0 INFORMATION" in show and "VIRTUAL MACHINE TEMPLATE" in show
    assert "ttylinux.img" in show and "IP=192.168.1.129" in show


def test_cli_errors_are_one_line_with_a_non_zero_exit(oned, tmp_path):
    """A template syntax error, an unknown host: one Error: line each; a dead endpoint: one
    line naming the command and the endpoint (issue 16)."""
    bad = tmp_path / "bad.one"
    bad.write_text("NAME = x\nDISK = [ source = ]\n")
    cases = [
        oned.run_cli("onevm", "create", str(bad)),
        oned.run_cli("onehost", "show", "nosuchhost"),
        oned.run_cli("onehost", "list", env={**oned.env, "ONE_XMLRPC": "http://127.0.0.1:1/RPC2"}),
    ]
    down = "onehost list: cannot reach oned at http://127.0.0.1:1/RPC2: "
    for result, start in zip(cases, ("Error: ", "Error: ", down), strict=True):
        assert result.returncode == 255
        assert result.stderr.startswith(start) and len(result.stderr.splitlines()) == 1
    assert "line 2" in cases[0].stderr
    assert lines(oned.run_cli("onevm", "list"))[1:] == []
