"""EC2 keys against a real oned (issue 15, authentication): a user's keys with `oneuser ec2key`
and pyone, the secret shown once and stored sealed, econe's server account getting the secret
and a token that acts as the user until it expires, and no secret in any log or in the DB."""

from __future__ import annotations

import sqlite3
import stat
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess

pytestmark = pytest.mark.functional

ADMIN = "oneadmin:onecloud"
LIFETIME = 3  # EC2_TOKEN_LIFETIME of this oned


@pytest.fixture
def oned(tmp_path):
    oned = OnedProcess(tmp_path / "one").set(EC2_TOKEN_LIFETIME=LIFETIME).start()
    one = pyone.OneServer(oned.endpoint, session=ADMIN)
    one.user.allocate("helen", "pw")
    one.user.allocate("dan", "pw")
    yield oned
    oned.stop()


def call(oned: OnedProcess, session: str, method: str, *params: object) -> tuple[bool, object, int]:
    with xmlrpc.client.ServerProxy(oned.endpoint) as proxy:
        reply = getattr(proxy, method)(session, *params)
    return reply[0], reply[1], reply[2]


def as_user(oned: OnedProcess, name: str) -> dict[str, str]:
    auth = oned.location / f"{name}_auth"
    auth.write_text(f"{name}:pw\n")
    return {**oned.env, "ONE_AUTH": str(auth)}


def created(oned: OnedProcess, env: dict[str, str], *user: str) -> tuple[str, str]:
    out = oned.run_cli("oneuser", "ec2key", "create", *user, env=env)
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    assert "shown only now" in out.stdout
    return fields["ACCESS_KEY_ID"].strip(), fields["SECRET_KEY"].strip()


def everything_written(oned: OnedProcess) -> str:
    """oned.log, the drivers' logs and the database files as text, and the SQL dump."""
    var = oned.location / "var"
    text = [p.read_bytes().decode("latin-1") for p in var.rglob("*") if p.is_file()]
    with sqlite3.connect(var / "one.db") as db:
        text += list(db.iterdump())
    return "\n".join(text)


def test_a_user_creates_lists_and_deletes_keys_and_the_secret_is_shown_once(oned):
    helen = as_user(oned, "helen")
    key, secret = created(oned, helen)
    assert len(secret) == 40 and key.startswith("AKOC")
    listing = oned.run_cli("oneuser", "ec2key", "list", env=helen)
    assert listing.returncode == 0 and key in listing.stdout and secret not in listing.stdout
    raw = oned.run_cli("oneuser", "ec2key", "list", "--xml", env=helen).stdout
    assert [e.text for e in ET.fromstring(raw).iter("ACCESS_KEY_ID")] == [key]
    created(oned, helen)
    third = oned.run_cli("oneuser", "ec2key", "create", env=helen)
    assert third.returncode != 0 and "already has 2 EC2 keys" in third.stderr
    assert oned.run_cli("oneuser", "ec2key", "delete", key, env=helen).returncode == 0
    assert key not in oned.run_cli("oneuser", "ec2key", "list", env=helen).stdout
    # oneadmin manages anyone's keys by user name
    other, _ = created(oned, oned.env, "dan")
    assert other in oned.run_cli("oneuser", "ec2key", "list", "dan").stdout


def test_another_user_is_refused_everything_on_a_key_and_only_oneadmin_reads_secrets(oned):
    key, _ = created(oned, as_user(oned, "helen"))
    helen_uid = int(pyone.OneServer(oned.endpoint, session="helen:pw").user.info(-1).ID)
    for method, param in [
        ("one.user.ec2keycreate", helen_uid),
        ("one.user.ec2keyinfo", helen_uid),
        ("one.user.ec2keydelete", key),
        ("one.user.ec2keysecret", key),
    ]:
        assert call(oned, "dan:pw", method, param)[::2] == (False, 0x200), method
    assert call(oned, "helen:pw", "one.user.ec2keysecret", key)[::2] == (False, 0x200)
    assert call(oned, ADMIN, "one.user.ec2keysecret", "AKOCAAAAAAAAAAAAAAAA")[2] == 0x400
    ok, keys, _ = call(oned, "helen:pw", "one.user.ec2keyinfo", -1)
    assert ok and key in str(keys)


def test_econes_account_gets_the_secret_and_a_token_that_works_until_it_expires(oned):
    key, secret = created(oned, as_user(oned, "helen"))
    ok, (uid, name, clear, token, expires), _ = call(oned, ADMIN, "one.user.ec2keysecret", key)
    assert ok and (name, clear) == ("helen", secret)
    assert 0 < expires - time.time() <= LIFETIME + 1
    one = pyone.OneServer(oned.endpoint, session=f"helen:{token}")
    vid = one.vm.allocate("NAME = by-token\nMEMORY = 8")
    assert int(one.vm.info(vid).UID) == uid and one.user.info(-1).NAME == "helen"
    assert call(oned, f"dan:{token}", "one.user.info", -1)[2] == 0x100  # the user's own only
    time.sleep(max(0.0, expires - time.time()) + 0.5)
    assert call(oned, f"helen:{token}", "one.user.info", -1)[::2] == (False, 0x100)
    # a deleted key's tokens end at once
    _, (_, _, _, token, _), _ = call(oned, ADMIN, "one.user.ec2keysecret", key)
    assert call(oned, f"helen:{token}", "one.user.info", -1)[0]
    assert call(oned, "helen:pw", "one.user.ec2keydelete", key)[0]
    assert call(oned, f"helen:{token}", "one.user.info", -1)[::2] == (False, 0x100)


def test_keys_survive_a_restart_tokens_do_not_and_no_secret_is_written_in_clear(oned):
    key, secret = created(oned, as_user(oned, "helen"))
    token = call(oned, ADMIN, "one.user.ec2keysecret", key)[1][3]
    key_file = Path(oned.location / "etc" / "ec2_keys.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    oned.stop()
    oned.start()
    assert call(oned, f"helen:{token}", "one.user.info", -1)[::2] == (False, 0x100)
    assert call(oned, ADMIN, "one.user.ec2keysecret", key)[1][2] == secret
    oned.stop()
    written = everything_written(oned)
    assert key in written  # the access key id is no secret
    assert secret not in written and token not in written
    assert "EC2 key" in oned.log and "1 EC2 keys" in oned.log


def test_deleting_a_user_deletes_its_keys(oned):
    key, _ = created(oned, as_user(oned, "helen"))
    one = pyone.OneServer(oned.endpoint, session=ADMIN)
    one.user.delete(int(pyone.OneServer(oned.endpoint, session="helen:pw").user.info(-1).ID))
    assert call(oned, ADMIN, "one.user.ec2keysecret", key)[2] == 0x400
    oned.stop()
    with sqlite3.connect(oned.location / "var" / "one.db") as db:
        assert db.execute("SELECT count(*) FROM ec2_keys").fetchone() == (0,)
