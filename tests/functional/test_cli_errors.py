"""Against a real oned: every one* command family names oned's endpoint (and the user) when it
cannot reach oned or oned refuses the session, and prints -j/-y documents of oned's XML
(issue 16, items 8 and 9)."""

from __future__ import annotations

import json
import socket

import yaml

FAMILIES = ("onevm", "onehost", "oneuser", "onevnet", "oneimage")


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_named_with_the_command_on_one_line(oned):
    endpoint = f"http://127.0.0.1:{closed_port()}/RPC2"
    for family in FAMILIES:
        result = oned.run_cli(family, "list", env={**oned.env, "ONE_XMLRPC": endpoint})
        assert (result.returncode, result.stdout) == (255, ""), family
        assert result.stderr == (
            f"{family} list: cannot reach oned at {endpoint}: Connection refused\n"
        )


def test_a_wrong_password_names_the_endpoint_and_the_user_for_every_family(oned, tmp_path):
    auth = tmp_path / "bad_auth"
    auth.write_text("oneadmin:wrong\n")
    env = {**oned.env, "ONE_AUTH": str(auth)}
    for family in FAMILIES:
        result = oned.run_cli(family, "list", env=env)
        assert result.returncode == 255, family
        assert result.stderr.startswith(
            f"{family} list: oned at {oned.endpoint} refused user oneadmin: "
        ), result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_create_prints_the_id_and_show_and_list_print_json_and_yaml(oned, tmp_path):
    assert oned.run_cli("oneuser", "create", "helen", "mypass").stdout == "ID: 1\n"
    template = tmp_path / "vm.one"
    template.write_text("NAME = json\nMEMORY = 64\nCPU = 1\n")
    assert oned.run_cli("onevm", "create", str(template)).stdout == "ID: 0\n"
    shown = json.loads(oned.run_cli("onevm", "show", "-j", "0").stdout)
    assert shown["VM"]["ID"] == "0" and shown["VM"]["NAME"] == "json"
    assert shown["VM"]["TEMPLATE"]["MEMORY"] == "64"
    users = yaml.safe_load(oned.run_cli("oneuser", "list", "-y").stdout)
    assert [u["NAME"] for u in users["USER_POOL"]["USER"]] == ["oneadmin", "helen"]
    one_vm = json.loads(oned.run_cli("onevm", "list", "--json").stdout)
    assert one_vm["VM_POOL"]["VM"]["NAME"] == "json"  # one element: a mapping, as OpenNebula's
