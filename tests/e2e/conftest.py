"""End-to-end fixtures: ``test_hosts`` (namespace hosts over SSH, see host_fixtures.py), libvirt
and the test guest (guest_fixtures.py); and the e2e tests' longer deadline."""

import pytest

from tests.e2e.guest_fixtures import *  # noqa: F403
from tests.e2e.host_fixtures import TestHosts, test_hosts

__all__ = ["TestHosts", "test_hosts"]

# pytest-timeout's deadline for an e2e test, its fixtures' set-up included: the first one may
# build the test guest (build-test-guest's own limit is 900 s) and probe KVM. Only a guard
# against a hang: a test that needs more says so with @pytest.mark.timeout(N).
E2E_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
