"""What the CLIs read from the user's files: templates and ONE_AUTH (issue 12, finding 8).

Each failure is one line ``Error: ...`` naming the file and what is wrong with it, exit 255,
never a traceback.
"""

import io
import re

import pytest

from cli import onevm, onevnet
from cli.common import CliError, run_cli
from cli.template_file import read_template
from oned.client import OneClient, OneClientError
from oned.template import parse
from oned.vmtemplate import check_memory_given

LATIN1 = 'NAME = "cafe"\nDESC = "café"\nMEMORY = 64\n'.encode("latin-1")
OFFSET = LATIN1.index(b"\xe9")


class NeverCalled:
    def call(self, method, *params):
        raise AssertionError(f"{method} called with a template that could not be read")


def run(module, argv):
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(module.PROG, module.DESCRIPTION, module.COMMANDS, argv, NeverCalled, out, err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("module", [onevm, onevnet])
def test_a_latin1_template_is_one_error_line_naming_the_file_and_the_byte(module, tmp_path):
    """Finding 8: a Latin-1 DESC="café" gave a UnicodeDecodeError traceback and exit 1."""
    path = tmp_path / "cafe.one"
    path.write_bytes(LATIN1)
    rc, out, err = run(module, ["create", str(path)])
    assert (rc, out) == (255, "")
    assert err == (
        f"Error: template file {path} is not UTF-8 text: byte 0xe9 at offset {OFFSET} "
        "(convert it, e.g. iconv -f latin1 -t utf-8)\n"
    )


def test_read_template_names_the_file_and_the_offset(tmp_path):
    """The helper every command can share says the same as the skeleton's safety net."""
    path = tmp_path / "cafe.one"
    path.write_bytes(LATIN1)
    expected = f"{path} is not UTF-8 text: byte 0xe9 at offset {OFFSET}"
    with pytest.raises(CliError, match=re.escape(expected)):
        read_template(str(path))
    path.write_text('DESC = "café"\n', encoding="utf-8")
    assert read_template(str(path)) == 'DESC = "café"\n'


def test_a_missing_template_file_is_named(tmp_path):
    with pytest.raises(CliError, match=r"cannot read template file .*nope: No such file"):
        read_template(str(tmp_path / "nope"))


def test_a_one_auth_that_is_a_directory_says_so(monkeypatch, tmp_path):
    """Finding 8: an ONE_AUTH path that is a directory said "not found"."""
    monkeypatch.setenv("ONE_AUTH", str(tmp_path))
    with pytest.raises(OneClientError) as info:
        OneClient("http://127.0.0.1:1/RPC2")
    assert info.value.message == f"ONE_AUTH file {tmp_path} is a directory, not a file"


def test_a_one_auth_that_cannot_be_read_is_not_called_missing(monkeypatch, tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_bytes(b"helen:caf\xe9\n")
    monkeypatch.setenv("ONE_AUTH", str(auth))
    with pytest.raises(OneClientError, match=re.escape(f"ONE_AUTH file {auth} is not UTF-8 text")):
        OneClient("http://127.0.0.1:1/RPC2")


def test_a_vm_without_memory_is_refused_naming_memory():
    """Finding 8: an empty template made a VM of CPU 0 and MEMORY 0 that the scheduler placed."""
    assert check_memory_given(parse("")) == [
        "MEMORY is missing: a VM needs MEMORY, a positive integer (MB)"
    ]
    assert check_memory_given(parse('NAME = "x"\nCPU = 1')) != []
    assert check_memory_given(parse("MEMORY = 64")) == []
