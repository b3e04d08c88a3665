"""Functional fixtures: a real oned on loopback, and clients for it."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.oned_process import OnedProcess


@pytest.fixture
def oned(tmp_path):
    """A running oned with oneadmin:onecloud, stopped (SIGTERM) after the test."""
    process = OnedProcess(tmp_path / "one").start()
    yield process
    process.stop()


@pytest.fixture
def admin(oned):
    """pyone, from PyPI, as oneadmin."""
    return pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")


def as_user(oned: OnedProcess, session: str) -> pyone.OneServer:
    return pyone.OneServer(oned.endpoint, session=session)
