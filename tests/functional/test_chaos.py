"""The chaos benchmark in short (issue 11): kill -9 of oned during a storm of VM operations."""

from __future__ import annotations

import pytest

from bench import chaos


@pytest.mark.parametrize(
    "flags", [[], ["--scheduler", "--kill-drivers"]], ids=["oneadmin", "sched"]
)
def test_kill_9_during_a_storm_loses_reuses_leaks_and_leaves_stuck_nothing(tmp_path, flags):
    """Findings 1 and 6 of issue 11 in short: 5 kills during 100 operations from 4 clients; 0
    lost acknowledged writes, 0 ids reused, 0 leases leaked or doubled, 0 VMs stuck after."""
    args = chaos.parse_args(
        ["--kills", "5", "--ops", "100", "--settle", "30", "--seed", "7", *flags]
    )
    result = chaos.run(args, tmp_path / "one")
    assert result.errors == []
    assert result.lost == []
    assert result.reused == []
    assert result.leaked == [] and result.doubled == []
    assert not result.stuck, dict(result.stuck)
