"""Passwords are stored salted and stretched; clear and SHA-1 secrets both verify."""

import hashlib

import pytest

from oned import auth
from oned.errors import AuthenticationError


def test_a_stored_password_is_neither_clear_nor_a_bare_sha1():
    """The stored form names its scheme and hides both the password and its SHA-1."""
    stored = auth.hash_password("mypass")
    assert stored.startswith("pbkdf2_sha256$")
    assert "mypass" not in stored
    assert hashlib.sha1(b"mypass").hexdigest() not in stored


def test_two_users_with_the_same_password_get_different_hashes():
    """A fresh salt every time."""
    assert auth.hash_password("same") != auth.hash_password("same")


@pytest.mark.parametrize("secret", ["mypass", hashlib.sha1(b"mypass").hexdigest()])
def test_clear_and_sha1_secrets_verify_against_a_clear_password(secret):
    """pyone sends the password, OpenNebula 1.4 clients its SHA-1."""
    assert auth.verify_password(secret, auth.hash_password("mypass"))


def test_a_password_given_as_its_sha1_verifies_with_the_clear_secret():
    """1.4's oneuser create sends sha1(password); the user may later log in with pyone."""
    stored = auth.hash_password(hashlib.sha1(b"mypass").hexdigest())
    assert auth.verify_password("mypass", stored)
    assert not auth.verify_password("other", stored)


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$a$b", "pbkdf2_sha256$x$a$b"])
def test_a_damaged_stored_hash_never_verifies(stored):
    """Garbage in the password column is a failed login, not a crash."""
    assert not auth.verify_password("x", stored)


@pytest.mark.parametrize("session", ["nocolon", ":secret", "user:", None, 7])
def test_malformed_sessions_are_authentication_errors(session):
    """Everything but user:secret is refused with the same message."""
    with pytest.raises(AuthenticationError, match="couldn't be authenticated"):
        auth.split_session(session)


def test_a_session_secret_may_contain_colons():
    """Only the first colon separates the user name."""
    assert auth.split_session("helen:a:b") == ("helen", "a:b")


@pytest.mark.parametrize("name", ["", "a b", "a:b", "x" * 129, "tab\tname"])
def test_user_names_that_would_break_sessions_are_refused(name):
    """No blanks, no colon, at most 128 characters."""
    with pytest.raises(ValueError, match="invalid user name"):
        auth.check_user_name(name)
