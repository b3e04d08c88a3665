"""Dashboard sessions: random cookies kept only hashed, expiry from sign-in, the CSRF token
compared in constant time, sign-out forgets, the table bounded."""

from __future__ import annotations

import pytest

from dashboard.sessions import Sessions, TooManySessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_a_cookie_finds_its_session_and_the_table_keeps_only_its_hash(clock):
    sessions = Sessions(3600, clock=clock)
    cookie, session = sessions.open("helen", 3, False, "s3cret")
    assert len(cookie) >= 43 and sessions.get(cookie) is session
    assert session.oned_session == "helen:s3cret"
    assert session.public() == {"user": "helen", "uid": 3, "admin": False, "csrf": session.csrf}
    assert cookie not in repr(sessions.__dict__) and "s3cret" not in repr(session)


def test_two_sign_ins_get_different_cookies_and_tokens(clock):
    sessions = Sessions(3600, clock=clock)
    (c1, s1), (c2, s2) = sessions.open("a", 1, False, "p"), sessions.open("a", 1, False, "p")
    assert c1 != c2 and s1.csrf != s2.csrf


@pytest.mark.parametrize("cookie", ["", None, "forged", "x" * 5000, "\udcff"])
def test_a_forged_or_missing_cookie_finds_nothing(clock, cookie):
    sessions = Sessions(3600, clock=clock)
    sessions.open("a", 1, False, "p")
    assert sessions.get(cookie) is None


def test_a_session_expires_lifetime_seconds_after_sign_in_however_used(clock):
    sessions = Sessions(60, clock=clock)
    cookie, _ = sessions.open("a", 1, False, "p")
    clock.now += 59
    assert sessions.get(cookie) is not None
    clock.now += 1
    assert sessions.get(cookie) is None and len(sessions) == 0


def test_sign_out_forgets(clock):
    sessions = Sessions(60, clock=clock)
    cookie, session = sessions.open("a", 1, False, "p")
    sessions.close(session)
    assert sessions.get(cookie) is None


def test_the_csrf_token_must_be_the_sessions_own(clock):
    _, session = Sessions(60, clock=clock).open("a", 1, False, "p")
    _, other = Sessions(60, clock=clock).open("a", 1, False, "p")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None) and not session.csrf_ok("")
    assert not session.csrf_ok(other.csrf) and not session.csrf_ok(session.csrf + "x")
    assert not session.csrf_ok("é")


def test_a_full_table_refuses_a_new_sign_in_until_one_expires(clock):
    sessions = Sessions(60, limit=2, clock=clock)
    sessions.open("a", 1, False, "p")
    sessions.open("b", 2, False, "p")
    with pytest.raises(TooManySessions):
        sessions.open("c", 3, False, "p")
    clock.now += 60
    sessions.open("c", 3, False, "p")
    assert len(sessions) == 1


def test_a_user_past_their_share_loses_their_oldest_session_not_others(clock):
    sessions = Sessions(60, limit=10, per_user=2, clock=clock)
    other, _ = sessions.open("b", 2, False, "p")
    first, _ = sessions.open("a", 1, False, "p")
    second, _ = sessions.open("a", 1, False, "p")
    third, _ = sessions.open("a", 1, False, "p")
    assert sessions.get(first) is None
    assert all(sessions.get(c) for c in (other, second, third))


def test_sessions_are_told_apart_by_identity_even_with_the_same_user(clock):
    sessions = Sessions(60, clock=clock)
    _, one = sessions.open("a", 1, False, "p")
    _, two = sessions.open("a", 1, False, "p")
    assert len({one, two}) == 2 and one != two


def test_alive_until_expiry_or_sign_out(clock):
    sessions = Sessions(60, clock=clock)
    _, one = sessions.open("a", 1, False, "p")
    _, two = sessions.open("a", 1, False, "p")
    assert sessions.alive(one)
    sessions.close(one)
    assert not sessions.alive(one) and sessions.alive(two)
    clock.now += 60
    assert not sessions.alive(two)
