"""DEFAULT_TM_MAD: the TM of hosts added by the modern one.host.allocate (issue 12, finding 4)."""

from pathlib import Path

import pytest

from oned.config import load_config
from oned.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "oned.conf.example"
TMS = "".join(
    f'TM_MAD = [ name = "{name}", executable = "one_tm" ]\n' for name in ("tm_dummy", "tm_nfs")
)


def test_the_shipped_file_names_tm_ssh_explicitly():
    """Finding 4: the old code read the first TM_MAD and ignored DEFAULT_TM_MAD with a warning."""
    config = load_config(EXAMPLE.read_text(encoding="utf-8"))
    assert config.default_tm_mad == "tm_ssh" and "tm_ssh" in [m.name for m in config.tm_mads]
    assert not any("DEFAULT_TM_MAD" in warning for warning in config.warnings)


def test_default_tm_mad_chooses_any_defined_tm_not_the_first():
    assert load_config(TMS + 'DEFAULT_TM_MAD = "tm_nfs"\n').default_tm_mad == "tm_nfs"


def test_a_default_tm_mad_that_is_not_defined_stops_oned_naming_the_line():
    with pytest.raises(
        ConfigError,
        match=r'line 3: DEFAULT_TM_MAD = "tm_ssh" is not a TM_MAD name \(defined: tm_dummy, tm_nfs',
    ):
        load_config(TMS + 'DEFAULT_TM_MAD = "tm_ssh"\n')


def test_a_1_4_file_without_tm_ssh_still_loads():
    """Left out, the built-in tm_ssh is checked only by a modern allocate that needs it."""
    assert load_config(TMS).default_tm_mad == "tm_ssh"
