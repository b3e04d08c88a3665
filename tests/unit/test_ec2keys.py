"""EC2 keys (issue 15): sealing (oned.ec2keys), the key file (oned.bootstrap), the token
sessions (oned.api.sessions) and one.user.ec2key* on the real pools and an SQLite store."""

from __future__ import annotations

import logging
import os
import stat
import xml.etree.ElementTree as ET
from xml.sax.saxutils import unescape

import pytest

from cli.oneuser import ec2key_created_lines, ec2key_list_lines
from oned import ec2keys
from oned.api import ec2keys as api
from oned.api import users
from oned.api.cloud import Caller, Cloud
from oned.api.sessions import Sessions
from oned.bootstrap import StartupError, load_sealing_key
from oned.config import load_config
from oned.ec2keys import Grant, SealError
from oned.errors import ActionNotAllowed, AuthorizationError, NoSuchObject
from oned.pools import Pools
from oned.records import User
from oned.store import Store

ADMIN, HELEN, DAN = Caller(0, "oneadmin"), Caller(1, "helen"), Caller(2, "dan")
NOW = 1_700_000_000
KEY = bytes(range(32))
ID = "AKOCABCDEFGHIJKLMNOP"


# -- sealing -----------------------------------------------------------------------------


def test_a_sealed_secret_opens_with_its_key_and_access_key_id():
    sealed = ec2keys.seal(KEY, ID, "s3cret")
    assert "s3cret" not in sealed
    assert ec2keys.unseal(KEY, ID, sealed) == "s3cret"
    assert ec2keys.seal(KEY, ID, "s3cret") != sealed  # a fresh nonce each time


@pytest.mark.parametrize(
    "change",
    [
        lambda s: (KEY, ID, s[:-4] + ("AAAA" if s[-4:] != "AAAA" else "BBBB")),  # tampered
        lambda s: (KEY, "AKOCZZZZZZZZZZZZZZZZ", s),  # moved to another key id
        lambda s: (bytes(32), ID, s),  # another sealing key
        lambda s: (KEY, ID, "not base64!"),
        lambda s: (KEY, ID, ""),
    ],
)
def test_a_tampered_or_moved_secret_is_refused(change):
    with pytest.raises(SealError):
        ec2keys.unseal(*change(ec2keys.seal(KEY, ID, "s3cret")))


def test_new_access_key_ids_and_secrets_have_their_shapes_and_never_repeat():
    ids = {ec2keys.new_access_key_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(ec2keys.ACCESS_KEY_ID.fullmatch(i) for i in ids)
    secret = ec2keys.new_secret()
    assert len(secret) == 40 and secret != ec2keys.new_secret()


# -- the key file ------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_the_key_file_is_created_0600_whatever_the_umask_and_read_back(tmp_path, umask, caplog):
    path = str(tmp_path / "ec2_keys.key")
    old = os.umask(umask)
    try:
        key = load_sealing_key(path, logging.getLogger("t"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key) == 32 and load_sealing_key(path, logging.getLogger("t")) == key


def test_a_key_file_readable_by_others_is_narrowed_with_a_warning(tmp_path, caplog):
    path = tmp_path / "ec2_keys.key"
    path.write_text(ec2keys.key_file_text(KEY))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_sealing_key(str(path), logging.getLogger("t")) == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "had mode 0644: now 0600" in caplog.text


@pytest.mark.parametrize("text", ["", "garbage!\n", "AAAA\n"])
def test_a_garbled_key_file_stops_oned_rather_than_being_replaced(tmp_path, text):
    path = tmp_path / "ec2_keys.key"
    path.write_text(text)
    with pytest.raises(StartupError, match="EC2 key file"):
        load_sealing_key(str(path), logging.getLogger("t"))
    assert path.read_text() == text


def test_an_unwritable_etc_leaves_ec2_keys_disabled_and_says_so(tmp_path, caplog):
    path = str(tmp_path / "missing" / "ec2_keys.key")
    with caplog.at_level(logging.ERROR):
        assert load_sealing_key(path, logging.getLogger("t")) == b""
    assert "EC2 keys refused" in caplog.text


# -- tokens and sessions -----------------------------------------------------------------


def test_a_token_is_a_session_of_its_user_until_it_expires():
    pools = pools_with_users()
    clock = [float(NOW)]
    sessions = Sessions(pools, logging.getLogger("t"), clock=lambda: clock[0])
    token = pools.ec2_keys.tokens.issue(Grant(1, "helen", ID, NOW + 600), NOW)
    assert sessions.cached(f"helen:{token}") == HELEN
    assert sessions.cached(f"dan:{token}") is None
    clock[0] = NOW + 600
    assert sessions.cached(f"helen:{token}") is None
    assert len(pools.ec2_keys.tokens) == 0


def test_past_max_tokens_the_expired_go_first_then_the_oldest(monkeypatch):
    monkeypatch.setattr(ec2keys, "MAX_TOKENS", 3)
    tokens = ec2keys.Tokens()
    issued = [tokens.issue(Grant(1, "helen", ID, NOW + n), NOW) for n in (5, 1, 9)]
    tokens.issue(Grant(1, "helen", ID, NOW + 20), NOW + 2)  # the one ending at NOW + 1 goes
    assert len(tokens) == 3
    assert tokens.find(ec2keys.session_digest(f"helen:{issued[1]}"), NOW) is None
    tokens.issue(Grant(1, "helen", ID, NOW + 20), NOW + 2)  # none expired: the oldest goes
    assert tokens.find(ec2keys.session_digest(f"helen:{issued[0]}"), NOW) is None
    assert tokens.find(ec2keys.session_digest(f"helen:{issued[2]}"), NOW) is not None


def test_a_token_ends_with_its_key_its_user_or_the_users_enabled_flag():
    pools = pools_with_users()
    sessions = Sessions(pools, logging.getLogger("t"), clock=lambda: NOW)
    pools.ec2_keys.put(ec2keys.Ec2Key(ID, 1, "x", NOW))
    gone = pools.ec2_keys.tokens.issue(Grant(1, "helen", ID, NOW + 600), NOW)
    pools.ec2_keys.remove(ID)
    assert sessions.cached(f"helen:{gone}") is None
    disabled = pools.ec2_keys.tokens.issue(Grant(1, "helen", ID, NOW + 600), NOW)
    pools.put_user(User(1, "helen", "x", enabled=False))
    assert sessions.cached(f"helen:{disabled}") is None
    deleted = pools.ec2_keys.tokens.issue(Grant(2, "dan", ID, NOW + 600), NOW)
    pools.remove_user(2)
    assert sessions.cached(f"dan:{deleted}") is None


# -- one.user.ec2key* ----------------------------------------------------------------------


def pools_with_users() -> Pools:
    pools = Pools()
    for user in (User(0, "oneadmin", "x"), User(1, "helen", "x"), User(2, "dan", "x")):
        pools.put_user(user)
    return pools


@pytest.fixture
def cloud(tmp_path):
    config = load_config("DB = [ BACKEND = sqlite ]\nEC2_TOKEN_LIFETIME = 60\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = pools_with_users()
    for user in pools.users:
        store.insert_user(user)
    pools.ec2_keys.sealing_key = KEY
    yield Cloud(pools, store, config, logging.getLogger("t"), clock=lambda: NOW)
    store.close()


def stored(cloud: Cloud) -> list[tuple[str, int]]:
    return [(k.access_key_id, k.uid) for k in cloud.store.load_ec2_keys()]  # type: ignore[attr-defined]


def listed(cloud: Cloud, caller: Caller, uid: int) -> list[str]:
    doc = ET.fromstring(unescape(b"".join(api.info(cloud, caller, uid).parts).decode()))
    return [k.findtext("ACCESS_KEY_ID", "") for k in doc.iter("EC2_KEY")]


def test_a_user_creates_two_keys_lists_them_and_the_third_is_refused(cloud):
    first, secret = api.create(cloud, HELEN, -1)
    second, _ = api.create(cloud, ADMIN, 1)
    both = sorted([first, second])  # oldest first; the same second: by id
    assert listed(cloud, HELEN, -1) == listed(cloud, ADMIN, 1) == both
    with pytest.raises(ActionNotAllowed, match="already has 2 EC2 keys"):
        api.create(cloud, HELEN, 1)
    assert stored(cloud) == [(key, 1) for key in both]
    sealed = cloud.pools.ec2_keys.get(first).secret_enc
    assert secret not in sealed and ec2keys.unseal(KEY, first, sealed) == secret


def test_another_user_neither_creates_lists_deletes_nor_reads_a_secret(cloud):
    key, _ = api.create(cloud, HELEN, -1)
    for call, arg in [(api.create, 1), (api.info, 1), (api.delete, key), (api.secret, key)]:
        with pytest.raises(AuthorizationError):
            call(cloud, DAN, arg)
    with pytest.raises(AuthorizationError):
        api.secret(cloud, HELEN, key)  # not even the owner: econe's server account only
    assert stored(cloud) == [(key, 1)]


def test_oneadmin_gets_the_secret_and_a_token_of_the_keys_user(cloud):
    key, secret = api.create(cloud, HELEN, -1)
    uid, name, clear, token, expires = api.secret(cloud, ADMIN, key)
    assert (uid, name, clear, expires) == (1, "helen", secret, NOW + 60)
    sessions = Sessions(cloud.pools, logging.getLogger("t"), clock=lambda: NOW + 59)
    assert sessions.cached(f"helen:{token}") == HELEN


def test_deleting_a_key_or_its_user_removes_it_from_memory_and_database(cloud):
    key, _ = api.create(cloud, HELEN, -1)
    api.delete(cloud, HELEN, key)
    assert stored(cloud) == [] and listed(cloud, HELEN, 1) == []
    with pytest.raises(NoSuchObject, match=r"Error getting EC2 key \[AKOC"):
        api.delete(cloud, HELEN, key)
    kept, _ = api.create(cloud, DAN, -1)
    api.create(cloud, HELEN, -1)
    token = api.secret(cloud, ADMIN, api.create(cloud, HELEN, -1)[0])[3]
    users.delete(cloud, ADMIN, 1)
    assert stored(cloud) == [(kept, 2)]
    assert [k.access_key_id for k in cloud.pools.ec2_keys.of(1)] == []
    sessions = Sessions(cloud.pools, logging.getLogger("t"), clock=lambda: NOW)
    assert sessions.cached(f"helen:{token}") is None


def test_without_a_key_file_ec2_keys_are_refused_and_nothing_is_stored(cloud):
    cloud.pools.ec2_keys.sealing_key = b""
    with pytest.raises(ActionNotAllowed, match="EC2 keys are disabled"):
        api.create(cloud, HELEN, -1)
    assert stored(cloud) == []


def test_oneuser_lists_keys_without_a_secret_and_warns_when_it_prints_one():
    doc = f"<EC2_KEYS><EC2_KEY><ACCESS_KEY_ID>{ID}</ACCESS_KEY_ID><UID>1</UID>"
    doc += "<CREATED>0</CREATED></EC2_KEY></EC2_KEYS>"
    lines = ec2key_list_lines(doc)
    assert lines[0].split() == ["ACCESS_KEY_ID", "UID", "CREATED"]
    assert lines[1].split()[:2] == [ID, "1"] and len(lines) == 2
    shown = ec2key_created_lines(ID, "s3cret")
    assert shown[:2] == [f"ACCESS_KEY_ID: {ID}", "SECRET_KEY:    s3cret"]
    assert any("shown only now" in line for line in shown)
