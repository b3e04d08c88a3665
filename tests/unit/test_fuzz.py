"""CI's short run of bench/fuzz.py (issue 10): a few thousand generated inputs per parser.

The full run is 1,000,000 inputs per target (bench/RESULTS.md); this one uses the same
generator and checks with a fixed seed, so a failure here replays with
``bench/fuzz.py --target NAME --count N --seed 10``.
"""

import pytest

from bench import fuzz

COUNT = {"template": 4000, "template_xml": 5000, "expr": 3000, "xmlrpc": 5000}
# Only for a real hang: unit tests make no timing assertions (a busy CI machine is slow).
DEADLINE = 30.0


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_generated_inputs_raise_only_the_documented_exception(target, tmp_path):
    """Every input parses (and round-trips, and evaluates) or raises the documented error."""
    tally = fuzz.fuzz(target, fuzz.generated(target, COUNT[target], 10), DEADLINE, tmp_path)
    problems = sorted(p.read_text() for p in tmp_path.glob("*.txt"))
    assert tally.failures == 0, problems[:3]
    assert tally.count == COUNT[target]
    assert 0 < tally.refused < tally.count, "the generator makes both valid and invalid inputs"


def test_a_check_that_raises_something_else_is_reported_with_a_reproducer(tmp_path):
    """The harness itself: an undocumented exception is a failure, saved under the folder."""

    def crashes(data):
        raise KeyError(data)

    fuzz.TARGETS["broken"] = fuzz.Target(crashes, (ValueError,), False)
    try:
        tally = fuzz.fuzz("broken", iter(["A=1", "B=2"]), DEADLINE, tmp_path)
    finally:
        del fuzz.TARGETS["broken"]
    assert tally.failures == 2
    assert (tmp_path / "broken-1.bin").read_bytes() == b"A=1"
    assert "KeyError" in (tmp_path / "broken-1.txt").read_text()
