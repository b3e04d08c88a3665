"""Table mechanics of the 1.4 CLI: cells, headers, times, templates and the top loop."""

import xml.etree.ElementTree as ET

import pytest

from cli.table import (
    CLEAR_SCREEN,
    Column,
    format_cell,
    header_line,
    select_columns,
    show_field,
    show_header,
    str_running_time,
    str_time,
    table_lines,
    template_lines,
    top,
)

COLUMNS = {
    "id": Column("ID", 4, lambda d: d["id"]),
    "name": Column("NAME", 6, lambda d: d["name"], left=True),
}


def test_cells_are_right_aligned_unless_left_and_truncated_to_their_size():
    assert format_cell(7, 4) == "   7"
    assert format_cell("ab", 4, left=True) == "ab  "
    assert format_cell("abcdefgh", 4) == "abcd"
    assert format_cell("abcdefgh", 4, left=True) == "abcd"


def test_table_joins_cells_with_one_space_and_header_is_plain_off_a_tty():
    rows = [{"id": 0, "name": "host01-long"}, {"id": 12, "name": "h"}]
    assert table_lines(list(COLUMNS.values()), rows) == [
        "  ID NAME  ",
        "   0 host01",
        "  12 h     ",
    ]


def test_header_is_bold_and_underlined_on_a_tty():
    assert header_line(list(COLUMNS.values()), tty=True) == "\33[1m\33[4m  ID NAME  \33[0m"


def test_list_option_chooses_columns_case_insensitively():
    chosen = select_columns(COLUMNS, ("id", "name"), "NAME,id")
    assert [c.name for c in chosen] == ["NAME", "ID"]
    assert [c.name for c in select_columns(COLUMNS, ("id",), None)] == ["ID"]


def test_list_option_with_an_unknown_column_names_it_and_the_valid_ones():
    with pytest.raises(ValueError, match="unknown column bogus; valid: id,name"):
        select_columns(COLUMNS, ("id",), "id,bogus")


@pytest.mark.parametrize(
    ("stime", "etime", "now", "expected"),
    [
        (100, 0, 128, "00 00:00:28"),
        (100, 0, 100 + 86400 + 3661, "01 01:01:01"),
        (100, 160, 10**9, "00 00:01:00"),  # ETIME set: the clock is not used
        (200, 0, 100, "00 00:00:00"),  # clock skew never prints a negative time
    ],
)
def test_running_time_is_days_then_hh_mm_ss(stime, etime, now, expected):
    assert str_running_time(stime, etime, now) == expected


def test_times_print_as_month_day_time_and_zero_as_dash(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    try:
        assert str_time(1795262190) == "11/21 11:56:30"
        assert str_time(0) == "-"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_show_lines_pad_labels_values_and_headers():
    assert show_field("ID", 3, 15) == "ID             : 3" + " " * 19
    assert show_header("HOST SHARES") == "HOST SHARES".ljust(80)
    assert show_header("X", tty=True, underline=True) == "\33[1m\33[4m" + "X".ljust(80) + "\33[0m"
    assert show_header("X", tty=True) == "\33[1m" + "X".ljust(80) + "\33[0m"


TEMPLATE = (
    "<TEMPLATE><NAME><![CDATA[tty]]></NAME><DISK><SOURCE><![CDATA[/img]]></SOURCE>"
    "<TARGET><![CDATA[hda]]></TARGET></DISK><EMPTY/></TEMPLATE>"
)


def test_template_prints_singles_and_indented_vectors_in_document_order():
    assert template_lines(ET.fromstring(TEMPLATE)) == [
        "NAME=tty",
        "DISK=[",
        "  SOURCE=/img,",
        "  TARGET=hda ]",
        "EMPTY=",
    ]


def test_flat_template_puts_a_vector_on_one_line():
    assert (
        template_lines(ET.fromstring(TEMPLATE), flat=True)[1] == "DISK=[ SOURCE=/img, TARGET=hda ]"
    )


def test_top_clears_the_screen_and_relists_every_delay():
    written, slept = [], []
    renders = iter([["a"], ["b"], ["c"]])
    top(lambda: next(renders), written.append, delay=2.5, sleep=slept.append, rounds=3)
    assert written == [CLEAR_SCREEN + "a\n", CLEAR_SCREEN + "b\n", CLEAR_SCREEN + "c\n"]
    assert slept == [2.5, 2.5]


def test_top_ends_quietly_on_ctrl_c():
    def interrupted(_delay):
        raise KeyboardInterrupt

    written = []
    assert top(lambda: ["x"], written.append, sleep=interrupted) == 0
    assert written == [CLEAR_SCREEN + "x\n"]
