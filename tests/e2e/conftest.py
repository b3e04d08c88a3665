"""End-to-end fixtures: ``test_hosts`` (namespace hosts over SSH, see host_fixtures.py)."""

from tests.e2e.guest_fixtures import *  # noqa: F403
from tests.e2e.host_fixtures import TestHosts, test_hosts

__all__ = ["TestHosts", "test_hosts"]
