"""-j/-y beside -x on every one* show and list, the XML -> mapping conversion, and the one-line
errors naming oned's endpoint and the user (issue 16, items 8 and 9)."""

import io
import json
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest
import yaml

from cli import onehost, oneimage, oneuser, onevm, onevnet
from cli.common import run_cli
from cli.output import render, to_dict
from oned.client import OneCallError, OneClientError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
VM_XML = (FIXTURES / "one.vm.info_running.xml").read_text()
HOST_POOL_XML = (FIXTURES / "one.hostpool.info_two_hosts.xml").read_text()


class Fake:
    """Answers every call with ``answer`` (or raises it); has an endpoint and a session."""

    endpoint = "http://oned.example:2633/RPC2"
    session = "helen:secret"

    def __init__(self, answer):
        self.answer = answer

    def call(self, method, *params):
        if isinstance(answer := self.answer, Exception):
            raise answer
        return answer(method) if callable(answer) else answer


def run(module, argv, answer):
    out, err = io.StringIO(), io.StringIO()
    fake = Fake(answer)
    rc = run_cli(module.PROG, module.DESCRIPTION, module.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_elements_become_keys_repeated_ones_lists_and_text_stays_a_string():
    doc = "<P><A>1</A><B><C>x</C><C>y</C><C><D>z</D></C></B><E/><F><G>2</G></F></P>"
    assert to_dict(fromstring(doc)) == {
        "P": {"A": "1", "B": {"C": ["x", "y", {"D": "z"}]}, "E": "", "F": {"G": "2"}}
    }


def test_an_empty_pool_is_an_empty_mapping_in_json_and_yaml():
    assert json.loads(render("<VM_POOL/>", "json")) == {"VM_POOL": {}}
    assert yaml.safe_load(render("<HOST_POOL></HOST_POOL>", "yaml")) == {"HOST_POOL": {}}


def test_json_and_yaml_of_a_vm_hold_every_value_of_its_xml():
    root = fromstring(VM_XML)
    as_json = json.loads(render(VM_XML, "json"))
    as_yaml = yaml.safe_load(render(VM_XML, "yaml"))
    assert as_json == as_yaml == to_dict(root)
    assert as_json["VM"]["ID"] == root.findtext("ID")
    assert as_json["VM"]["TEMPLATE"]["MEMORY"] == root.findtext("TEMPLATE/MEMORY")
    leaves = [e.text or "" for e in root.iter() if not len(e)]
    assert all(leaf in json.dumps(as_json, ensure_ascii=False) for leaf in leaves if leaf.isalnum())


CASES = [
    (onevm, ["show", "3"], VM_XML),
    (onevm, ["list"], "<VM_POOL>" + VM_XML + VM_XML + "</VM_POOL>"),
    (onehost, ["list"], HOST_POOL_XML),
    (onehost, ["show", "0"], (FIXTURES / "one.host.info_host01.xml").read_text()),
    (oneuser, ["list"], (FIXTURES / "one.userpool.info_three_users.xml").read_text()),
    (oneuser, ["show", "2"], (FIXTURES / "one.user.info_helen.xml").read_text()),
    (onevnet, ["list"], "<VNET_POOL><VNET><ID>0</ID><NAME>n</NAME></VNET></VNET_POOL>"),
    (onevnet, ["show", "0"], "<VNET><ID>0</ID><NAME>n</NAME></VNET>"),
    (oneimage, ["list"], "<IMAGE_POOL><IMAGE><ID>1</ID><NAME>i</NAME></IMAGE></IMAGE_POOL>"),
    (oneimage, ["show", "1"], "<IMAGE><ID>1</ID><NAME>i</NAME></IMAGE>"),
]


@pytest.mark.parametrize(("module", "argv", "xml"), CASES, ids=lambda c: str(c)[:20])
def test_every_show_and_list_prints_xml_json_or_yaml(module, argv, xml):
    expected = to_dict(fromstring(xml))
    for flag, load in (("-j", json.loads), ("--yaml", yaml.safe_load), ("-x", to_dict_of)):
        rc, out, err = run(module, [*argv, flag], xml)
        assert (rc, err) == (0, ""), (flag, err)
        assert load(out) == expected, flag
    rc, out, err = run(module, ["-j", *argv], xml)  # before the command too
    assert json.loads(out) == expected


def to_dict_of(text):
    return to_dict(fromstring(text))


def test_two_vms_shown_as_yaml_are_one_stream_of_two_documents():
    rc, out, _ = run(onevm, ["show", "-y", "1", "2"], VM_XML)
    assert rc == 0 and len(list(yaml.safe_load_all(out))) == 2


def test_two_output_formats_at_once_are_a_usage_error():
    rc, out, err = run(onevm, ["show", "-j", "-y", "1"], VM_XML)
    assert (rc, out, err) == (255, "", "Error: choose one output: --json, --yaml\n")


def test_create_prints_the_new_id(tmp_path):
    template = tmp_path / "vm.one"
    template.write_text("CPU = 1\nMEMORY = 64\n")
    assert run(onevm, ["create", str(template)], 7)[:2] == (0, "ID: 7\n")
    assert run(oneuser, ["create", "bob", "pw"], 8)[:2] == (0, "ID: 8\n")


REFUSED = OneCallError("User couldn't be authenticated, aborting call.", 0x100)


@pytest.mark.parametrize("module", [onevm, onehost, oneuser, onevnet, oneimage])
def test_a_refused_session_names_the_endpoint_and_the_user_on_one_line(module):
    rc, out, err = run(module, ["list"], REFUSED)
    assert (rc, out) == (255, "")
    assert err == (
        f"{module.PROG} list: oned at http://oned.example:2633/RPC2 refused user helen: "
        "User couldn't be authenticated, aborting call.\n"
    )


@pytest.mark.parametrize("module", [onevm, onehost, oneuser, onevnet, oneimage])
def test_an_unreachable_oned_is_named_with_the_command(module):
    down = OneClientError("cannot reach oned at http://oned.example:2633/RPC2: Connection refused")
    rc, _, err = run(module, ["list"], down)
    assert (rc, err) == (
        255,
        f"{module.PROG} list: cannot reach oned at http://oned.example:2633/RPC2: "
        "Connection refused\n",
    )


def test_a_client_failure_without_the_endpoint_gets_it_and_other_refusals_stay_errors():
    rc, _, err = run(onevm, ["list"], OneClientError("malformed reply to one.vmpool.info: x"))
    assert (rc, err) == (
        255,
        "onevm list: oned at http://oned.example:2633/RPC2: "
        "malformed reply to one.vmpool.info: x\n",
    )
    denied = OneCallError("[VirtualMachineAction] User [2] not authorized", 0x200)
    assert run(onevm, ["cancel", "3"], denied)[2] == (
        "Error: [VirtualMachineAction] User [2] not authorized\n"
    )
