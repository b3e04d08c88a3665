"""Our XML documents parse with pyone's own bindings, integers as integers (reference §5)."""

import pyone.bindings as bindings
import pytest

from oned import views
from oned.records import History, Host, HostShare, User, Vm
from oned.template import Template


def parse(xml: str):
    assert xml.startswith("<")
    return bindings.parseString(xml.encode(), silence=True)


def test_a_user_document_parses_with_pyone():
    """USER with ENABLED as 1 and the stored hash as PASSWORD."""
    user = parse(views.user_xml(User(3, "helen", "pbkdf2_sha256$1$a$b")))
    assert (user.ID, user.GID, user.NAME, user.ENABLED) == (3, 1, "helen", 1)


def test_a_host_document_parses_with_pyone_and_keeps_the_1_4_fields():
    """HOST_SHARE integers, the TM_MAD of 1.4, the monitoring template as a dict."""
    share = HostShare(max_cpu=200, max_mem=2017004, free_mem=1848172, used_cpu=16, running_vms=1)
    host = Host(
        0,
        "host01",
        "im_kvm",
        "vmm_kvm",
        "tm_nfs",
        state=2,
        share=share,
        template=Template([("HYPERVISOR", "kvm"), ("TOTALCPU", "200")]),
    )
    xml = views.host_xml(host, [4, 5])
    parsed = parse(xml)
    assert (parsed.ID, parsed.NAME, parsed.STATE) == (0, "host01", 2)
    assert parsed.HOST_SHARE.MAX_CPU == 200 and parsed.HOST_SHARE.RUNNING_VMS == 1
    assert parsed.VMS.ID == [4, 5]
    assert parsed.TEMPLATE["HYPERVISOR"] == "kvm"
    assert "<TM_MAD>tm_nfs</TM_MAD>" in xml and "<FREE_MEM>1848172</FREE_MEM>" in xml


def test_a_vm_document_parses_with_pyone_with_history_records():
    """VM with STATE/LCM_STATE ints, TEMPLATE vectors, every HISTORY record and the last one."""
    tmpl = Template([("NAME", "ttylinux"), ("DISK", {"SOURCE": "/a & b", "TARGET": "hda"})])
    vm = Vm(7, 2, "ttylinux", tmpl, state=3, lcm_state=3, stime=100)
    vm.history = [
        History(7, 0, "host01", 0, "/var", "vmm_kvm", "tm_nfs", stime=101),
        History(7, 1, "host02", 1, "/var", "vmm_kvm", "tm_nfs", stime=102),
    ]
    xml = views.vm_xml(vm, "helen")
    parsed = parse(xml)
    assert (parsed.ID, parsed.UID, parsed.UNAME, parsed.STATE, parsed.LCM_STATE) == (
        7,
        2,
        "helen",
        3,
        3,
    )
    assert parsed.TEMPLATE["DISK"]["SOURCE"] == "/a & b"
    assert [h.HOSTNAME for h in parsed.HISTORY_RECORDS.HISTORY] == ["host01", "host02"]
    assert xml.endswith(
        "<REASON>0</REASON><ACTION>0</ACTION><UID>-1</UID><GID>-1</GID>"
        "<REQUEST_ID>-1</REQUEST_ID></HISTORY></VM>"
    )
    assert "<LAST_SEQ>1</LAST_SEQ>" in xml


@pytest.mark.parametrize("name", ["a<b", "x&y", "q>r"])
def test_names_are_escaped(name):
    """Markup in a name cannot break the document."""
    parsed = parse(views.vm_xml(Vm(1, 0, name, Template()), "oneadmin"))
    assert name == parsed.NAME


def test_a_pending_vm_has_no_history_and_an_empty_monitoring():
    """Never deployed: HISTORY_RECORDS empty, no 1.4 HISTORY element, LAST_SEQ -1."""
    xml = views.vm_xml(Vm(1, 0, "one-1", Template()), "oneadmin")
    assert "<HISTORY_RECORDS></HISTORY_RECORDS>" in xml and "<HISTORY>" not in xml
    assert "<LAST_SEQ>-1</LAST_SEQ>" in xml and "<MONITORING/>" in xml


def test_the_pool_summary_keeps_what_listings_and_the_scheduler_read():
    """Capacity, requirements, NIC addresses and the last history record; not the rest."""
    tmpl = Template(
        [
            ("NAME", "web"),
            ("CPU", "0.5"),
            ("MEMORY", "512"),
            ("REQUIREMENTS", 'HYPERVISOR = "kvm"'),
            ("DISK", {"SOURCE": "/srv/big.img", "TARGET": "hda"}),
            ("NIC", {"NETWORK": "public", "IP": "10.0.0.5", "MODEL": "virtio"}),
            ("CONTEXT", {"FILES": "/srv/ctx"}),
        ]
    )
    vm = Vm(4, 0, "web", tmpl)
    vm.history = [History(4, s, f"h{s}", s, "/v", "vmm_kvm", "tm_nfs") for s in range(3)]
    parsed = parse(views.vm_short_xml(vm, "oneadmin"))
    assert parsed.TEMPLATE["MEMORY"] == "512"
    assert parsed.TEMPLATE["REQUIREMENTS"] == 'HYPERVISOR = "kvm"'
    assert parsed.TEMPLATE["NIC"] == {"NETWORK": "public", "IP": "10.0.0.5"}
    assert parsed.TEMPLATE["DISK"] == {"TARGET": "hda"}
    assert "CONTEXT" not in parsed.TEMPLATE
    assert [h.HOSTNAME for h in parsed.HISTORY_RECORDS.HISTORY] == ["h2"]
