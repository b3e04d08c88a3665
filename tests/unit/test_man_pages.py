"""The man pages (share/scripts/make-man-pages): one per user command, each naming every option
its ``--help`` lists, since both come from the same parser."""

from __future__ import annotations

import argparse
import configparser
import importlib.machinery
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "share" / "scripts" / "make-man-pages"
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def load_script():
    loader = importlib.machinery.SourceFileLoader("make_man_pages", str(SCRIPT))
    spec = importlib.util.spec_from_loader("make_man_pages", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


MAN = load_script()


def user_commands() -> set[str]:
    """setup.cfg's console scripts but the drivers (one_*), which only oned runs."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    names = {line.split("=")[0].strip() for line in lines}
    return {name for name in names if not name.startswith("one_")}


def helps(parser: argparse.ArgumentParser) -> list[str]:
    """``--help`` of the command and of each of its subcommands."""
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts += [child.format_help() for child in action.choices.values()]
    return texts


def plain(page: str) -> str:
    """The words of a roff page without its escapes."""
    for code, text in (("\\-", "-"), ("\\fB", ""), ("\\fR", ""), ("\\&", ""), ("\\e", "\\")):
        page = page.replace(code, text)
    return page


def test_every_user_command_of_setup_cfg_has_a_page_and_no_page_names_another():
    assert set(MAN.commands()) == user_commands()


@pytest.mark.parametrize("name", sorted(user_commands()))
def test_a_page_names_every_option_its_help_lists(name):
    parser = MAN.commands()[name]()
    page = plain(MAN.render(name, parser, "0.1.0"))
    for text in helps(parser):
        missing = {opt for opt in OPTION.findall(text)} - set(OPTION.findall(page))
        assert not missing, f"{name}: --help lists {sorted(missing)}, the page does not"
    assert page.startswith(f'.TH "{name.upper()}" 1')
    assert f"\n{name} - " in page


def test_subcommands_have_a_section_each_with_their_own_options():
    parser = MAN.commands()["onevm"]()
    page = plain(MAN.render("onevm", parser, "0.1.0"))
    assert ".SH COMMANDS" in page
    assert '.SS "onevm list ' in page
    assert "--delay" in page.split('.SS "onevm top ')[1].split(".SS")[0]


def test_text_that_roff_would_take_for_a_request_or_an_escape_is_escaped():
    assert MAN.escape(".TH x\n'y\nC:\\dir -f") == "\\&.TH x\n\\&'y\nC:\\edir \\-f"


def test_write_pages_writes_one_file_per_command(tmp_path):
    written = MAN.write_pages(str(tmp_path / "man1"))
    assert sorted(Path(p).name for p in written) == sorted(f"{n}.1" for n in user_commands())
    assert (tmp_path / "man1" / "mm_sched.1").read_text().count("MAX_HOST") >= 1
