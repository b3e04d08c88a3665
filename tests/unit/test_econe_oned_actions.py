"""econe's actions on oned's answers without a network (a scripted oned): instance types as
templates oned can parse whatever the key holds, terminated instances listed for the
configured time, all-or-nothing RunInstances below MinCount, tags surviving any characters."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from econe import instances, tags
from econe.config import Settings
from econe.context import Context, Services
from econe.credentials import Credentials
from econe.errors import Ec2Error
from econe.instance_types import InstanceTypes, describe_instance_types
from econe.query import QueryRequest
from oned import template

TYPES = Path(__file__).resolve().parents[2] / "templates" / "ec2query"


class ScriptedOned:
    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[tuple] = []

    def call(self, session, method, *params, **codes):
        self.calls.append((method, *params))
        answer = self.answers[method]
        return answer(*params) if callable(answer) else answer


def context(oned, **settings) -> Context:
    creds = Credentials("pw", 7, "alice", "alice:pw")
    services = Services(oned=oned, types=InstanceTypes(str(TYPES)))
    return Context("alice", Settings(**settings), "req", creds, services)


def vm(vid: int, state: int, etime: int = 0, tags_text: str = "") -> str:
    user = f"<USER_TEMPLATE><EC2_TAGS>{tags_text}</EC2_TAGS></USER_TEMPLATE>" if tags_text else ""
    return (
        f"<VM><ID>{vid}</ID><UID>7</UID><STATE>{state}</STATE><LCM_STATE>3</LCM_STATE>"
        f"<STIME>100</STIME><ETIME>{etime}</ETIME><TEMPLATE><ECONE><INSTANCE_TYPE>m1.small"
        f"</INSTANCE_TYPE><IMAGE_ID>ami-00000001</IMAGE_ID></ECONE></TEMPLATE>{user}</VM>"
    )


def test_a_public_key_with_quotes_and_backslashes_reaches_context_unchanged():
    key = 'ssh-rsa AAAA "quoted" back\\slash me@x'
    text = InstanceTypes(str(TYPES)).render(
        "m1.small", image_id=3, public_key=key, user_data="aGk="
    )
    parsed = template.parse(text)
    assert parsed.get("CONTEXT")["SSH_PUBLIC_KEY"] == key
    assert parsed.get("CONTEXT")["USER_DATA"] == "aGk="
    assert parsed.get("DISK")["IMAGE_ID"] == "3"
    with pytest.raises(Ec2Error, match="control characters"):
        InstanceTypes(str(TYPES)).render("m1.small", image_id=3, public_key="a\nDISK = [ x ]")


def test_instance_types_from_the_directory_or_the_table(tmp_path):
    answer = describe_instance_types(InstanceTypes(str(TYPES)), QueryRequest("D", "2016-11-15"))
    assert [t["instanceType"] for t in answer["instanceTypeSet"]] == [
        "m1.large",
        "m1.small",
        "m1.xlarge",
    ]
    (tmp_path / "tiny.j2").write_text(
        "CPU = 0.5\nMEMORY = 32\nDISK = [ IMAGE_ID = {{ image_id }} ]\n"
    )
    table = InstanceTypes(str(tmp_path), {"t1.micro": {"template": "tiny.j2"}})
    assert table.capacity("t1.micro") == {"name": "t1.micro", "cpu": 0.5, "vcpus": 1, "memory": 32}
    with pytest.raises(Ec2Error, match="InvalidParameterValue"):
        table.render("m1.small", image_id=1)


def test_terminated_instances_stay_listed_for_the_configured_time(monkeypatch):
    monkeypatch.setattr(instances.time, "time", lambda: 10_000.0)
    pool = f"<VM_POOL>{vm(1, 3)}{vm(2, 6, etime=9_500)}{vm(3, 6, etime=8_000)}</VM_POOL>"
    ctx = context(ScriptedOned({"one.vmpool.info": pool}), terminated_expiration=900)
    rows = instances.listed(ctx, [])
    assert [(r["id"], r["state"]) for r in rows] == [
        ("i-00000001", "running"),
        ("i-00000002", "terminated"),
    ]
    with pytest.raises(Ec2Error, match=r"InvalidInstanceID\.NotFound"):
        instances.listed(ctx, ["i-00000003"])


def test_fewer_than_min_count_leaves_nothing_behind():
    made = iter([10])

    def allocate(text):
        if 'LAUNCH_INDEX = "0"' in text:
            return next(made)
        raise Ec2Error("InvalidParameterValue", "quota exceeded")

    oned = ScriptedOned(
        {"one.image.info": "<IMAGE/>", "one.vm.allocate": allocate, "one.vm.action": 10}
    )
    params = {"ImageId": "ami-00000001", "MinCount": "2", "MaxCount": "3"}
    call = QueryRequest("RunInstances", "2016-11-15", params)
    with pytest.raises(Ec2Error) as info:
        instances.run_instances(context(oned), call)
    assert info.value.code == "InsufficientInstanceCapacity"
    assert ("one.vm.action", "finalize", 10) in oned.calls


def test_max_count_is_cut_to_the_limit_and_min_count_over_it_refused():
    assert instances._counts({"MinCount": "1", "MaxCount": "500"}, 20) == (1, 20)
    with pytest.raises(Ec2Error, match="InstanceLimitExceeded"):
        instances._counts({"MinCount": "21", "MaxCount": "30"}, 20)
    with pytest.raises(Ec2Error, match="InvalidParameterValue"):
        instances._counts({"MinCount": "x", "MaxCount": "1"}, 20)


def test_tags_hold_any_characters():
    wanted = {"Name": 'a&b=c "d"', "clé": "välue%"}
    written = {}
    oned = ScriptedOned(
        {
            "one.vm.info": lambda vid: vm(vid, 3),
            "one.vm.update": lambda vid, text, merge: written.update(text=text) or vid,
        }
    )
    call = QueryRequest(
        "CreateTags",
        "2016-11-15",
        {"ResourceId": ["i-00000004"], "Tag": [{"Key": k, "Value": v} for k, v in wanted.items()]},
    )
    tags.create_tags(context(oned), call)
    value = template.parse(written["text"]).get("EC2_TAGS")
    element = ET.fromstring(vm(4, 3, tags_text=value.replace("&", "&amp;")))
    assert tags.tags_of(element) == wanted


def test_a_users_tokens_are_read_from_oned_once_then_kept():
    from econe.tokens import TokenIndex

    scans = []
    index = TokenIndex(limit=2)

    def scan():
        scans.append(1)
        return {"old": [4]}

    with index.lock("alice"):
        assert index.find("alice", "old", scan) == [4]
        assert index.find("alice", "new", scan) == []
        index.add("alice", "new", [5, 6])
        assert index.find("alice", "new", scan) == [5, 6]
    assert len(scans) == 1
    index.add("alice", "third", [7])  # past the limit: learnt again from oned
    assert index.find("alice", "new", scan) == [] and len(scans) == 2
    assert index.lock("alice") is index.lock("alice") is not index.lock("bob")


def test_listings_are_cut_from_the_reply_and_unescaped():
    import xmlrpc.client

    from econe.one import _successful_string

    doc = '<VM_POOL><VM><NAME><![CDATA[a & b <c> "d"]]></NAME></VM></VM_POOL>'
    reply = xmlrpc.client.dumps(([True, doc, 0],), methodresponse=True).encode()
    assert _successful_string(reply) == doc
    odd = reply.replace(b"&amp;", b"&#38;")
    assert _successful_string(odd) == doc
    refused = xmlrpc.client.dumps(([False, "<no>", 0x400],), methodresponse=True).encode()
    assert _successful_string(refused) is None
