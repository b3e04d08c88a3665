"""The template language (reference §6.1): parsing, the Template multimap, rendering, XML."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oned.errors import TemplateSyntaxError
from oned.template import Template, parse
from oned.template_parser import Entry, parse_entries, scan, scan_tokens
from oned.template_xml import parse_any, parse_xml

# --- literal templates from the seed workshop (003) and OpenNebula's examples ----------------

TTYLINUX = """\
NAME      = ttylinux
CPU       = 0.1
MEMORY   = 64

DISK      = [
    source    = "/srv/cloud/images/ttylinux/ttylinux.img",
    target    = "hda",
    readonly  = "no" ]

NIC       = [ NETWORK = "One-TD" ]

FEATURES = [ acpi="no" ]

GRAPHICS = [
    type = "vnc",
    listen = "loclahost",
    port = "5902",
    keymap="es"]
"""

REAL_NET = """\
NAME = "One-TD"
TYPE = RANGED
BRIDGE = xenbr0
NETWORK_SIZE      = 125
NETWORK_ADDRESS = 192.168.$CN.128
"""

FAKE_NET = """\
NAME = "One-TD-Invisible"
TYPE = FIXED
BRIDGE = xenbr0
LEASES = [IP=192.168.($CN+100).5]
LEASES = [IP=192.168.($CN+100).10]
LEASES = [IP=192.168.($CN+100).15]
LEASES = [IP=192.168.($CN+100).20]
LEASES = [IP=192.168.($CN+100).25]
"""

EC2_TTYLINUX = """\
#EC2 template machine, this will be use wen submitting this VM to EC2
EC2 = [ AMI="ami-ccf615a5",
        KEYPAIR="keypair",
        AUTHORIZED_PORTS="22",
        INSTANCETYPE=m1.small]

#Add this if you want to use only EC2 cloud
REQUIREMENTS = "HOSTNAME = \\"ec2\\""

"""

CONTEXT_EXAMPLE = 'CONTEXT=[hostname="$NAME", ip_private="$NIC[IP, NETWORK=\\"Private LAN\\"]"]'

# The seed's OS section as printed in the workshop: a comma is missing after "root".
SEED_OS_WITHOUT_COMMA = """\
OS = [
    kernel      = "path_to_os_kernel",      # para-virtualization
    initrd      = "path_to_initrd_image",    # para-virtualization
    kernel_cmd  = "kernel_command_line",
    root        = "device to be mounted as root"
    bootloader  = "path to the boot loader exec"
    boot        = "device to boot from" ]
"""


def test_seed_ttylinux_template_parses_into_its_attributes():
    """The workshop's ttylinux VM reads with upper-cased names and keys, values as written."""
    assert list(parse(TTYLINUX)) == [
        ("NAME", "ttylinux"),
        ("CPU", "0.1"),
        ("MEMORY", "64"),
        (
            "DISK",
            {
                "SOURCE": "/srv/cloud/images/ttylinux/ttylinux.img",
                "TARGET": "hda",
                "READONLY": "no",
            },
        ),
        ("NIC", {"NETWORK": "One-TD"}),
        ("FEATURES", {"ACPI": "no"}),
        ("GRAPHICS", {"TYPE": "vnc", "LISTEN": "loclahost", "PORT": "5902", "KEYMAP": "es"}),
    ]


def test_seed_ranged_vnet_template_keeps_unquoted_values_verbatim():
    """real.net: unquoted values may hold dots and $ variables."""
    assert list(parse(REAL_NET)) == [
        ("NAME", "One-TD"),
        ("TYPE", "RANGED"),
        ("BRIDGE", "xenbr0"),
        ("NETWORK_SIZE", "125"),
        ("NETWORK_ADDRESS", "192.168.$CN.128"),
    ]


def test_seed_fixed_vnet_template_keeps_every_lease_in_order():
    """fake.net: five LEASES vectors, parentheses and + inside unquoted values."""
    template = parse(FAKE_NET)
    assert template.get_all("LEASES") == [
        {"IP": "192.168.($CN+100).5"},
        {"IP": "192.168.($CN+100).10"},
        {"IP": "192.168.($CN+100).15"},
        {"IP": "192.168.($CN+100).20"},
        {"IP": "192.168.($CN+100).25"},
    ]
    assert template.get_str("TYPE") == "FIXED"


def test_seed_ec2_template_unescapes_quotes_in_requirements():
    """The EC2 ttylinux: comments, a vector over lines, and \\" inside a quoted value."""
    template = parse(EC2_TTYLINUX)
    assert template.get("EC2") == {
        "AMI": "ami-ccf615a5",
        "KEYPAIR": "keypair",
        "AUTHORIZED_PORTS": "22",
        "INSTANCETYPE": "m1.small",
    }
    assert template.get("REQUIREMENTS") == 'HOSTNAME = "ec2"'


def test_opennebula_context_example_keeps_variables_and_inner_quotes():
    """vm.template's CONTEXT: $ variables kept, \\" becomes ", the comma stays inside quotes."""
    assert parse(CONTEXT_EXAMPLE).get("CONTEXT") == {
        "HOSTNAME": "$NAME",
        "IP_PRIVATE": '$NIC[IP, NETWORK="Private LAN"]',
    }


def test_seed_os_section_without_its_comma_is_a_syntax_error_at_the_next_key():
    """Pairs need commas: the workshop's OS example fails where the comma is missing."""
    with pytest.raises(TemplateSyntaxError) as caught:
        parse(SEED_OS_WITHOUT_COMMA)
    assert caught.value.reason == "syntax error, unexpected VARIABLE, expecting COMMA or CBRACKET"
    assert (caught.value.line, caught.value.column) == (6, 5)


# --- one grammar rule per test -----------------------------------------------------------------


def test_attributes_on_one_line_are_separated_by_blanks():
    """A=1 B=2 on one line is two attributes."""
    assert list(parse("A=1 B=2")) == [("A", "1"), ("B", "2")]


def test_attributes_need_no_blank_after_a_quoted_value():
    """A closing quote ends the value; the next name may follow at once."""
    assert list(parse('A="x"B=2')) == [("A", "x"), ("B", "2")]


def test_comments_run_to_end_of_line_at_line_start_and_after_a_value():
    """# starts a comment anywhere outside quotes."""
    text = "# heading\nA = 1 # after a value\n  # indented\nB = x#glued\n"
    assert list(parse(text)) == [("A", "1"), ("B", "x")]


def test_names_are_upper_cased_and_values_keep_their_case():
    """Names are case-insensitive, values are not."""
    template = parse("vCpu = MixedCase")
    assert list(template) == [("VCPU", "MixedCase")]
    assert template.get("vcpu") == "MixedCase"


def test_vector_keys_are_upper_cased():
    """Keys of a vector are stored upper-cased, their values as written."""
    assert parse("NIC = [ Model = virtio ]").get("NIC") == {"MODEL": "virtio"}


def test_blanks_around_the_equal_sign_are_optional():
    """A=1, A = 1 and tabs all read the same."""
    assert parse("A=1") == parse("A = 1") == parse("A\t=\t1")


def test_unquoted_value_stops_at_blank_comma_bracket_or_hash():
    """An unquoted value is a run of characters other than = # blank newline , [ ]."""
    assert parse("A = /a/b:c@d$e(f)+g;h B=2").get("A") == "/a/b:c@d$e(f)+g;h"
    assert parse("A = x#c").get("A") == "x"


def test_unquoted_value_may_hold_a_quote_after_its_first_character():
    """Only a leading quote opens a quoted value."""
    assert parse('A = ab"c').get("A") == 'ab"c'


def test_quoted_value_spans_lines_and_holds_commas_hash_and_brackets():
    """Inside double quotes anything but an unescaped quote is kept, newlines included."""
    text = 'DATA = "line 1, [x]\n# not a comment\nA = B"\nNEXT = 1'
    assert list(parse(text)) == [("DATA", "line 1, [x]\n# not a comment\nA = B"), ("NEXT", "1")]


def test_escaped_quote_inside_quotes_becomes_a_quote():
    """\\" inside quotes is a literal quote (as in OpenNebula 1.4)."""
    assert parse(r'A = "say \"hi\""').get("A") == 'say "hi"'


def test_escaped_backslash_inside_quotes_becomes_one_backslash():
    """\\\\ inside quotes is one backslash, so a value may end with a backslash."""
    assert parse(r'A = "C:\\" B = "a\\\"b"').get_all("A") == ["C:\\"]
    assert parse(r'B = "a\\\"b"').get("B") == 'a\\"b'


def test_other_backslashes_inside_quotes_are_kept():
    """A backslash before any other character stays, so 1.4 templates read the same."""
    assert parse(r'A = "C:\dir\n \d+"').get("A") == r"C:\dir\n \d+"


def test_backslashes_in_unquoted_values_are_literal():
    """Escapes are only interpreted inside quotes."""
    assert parse(r"A = a\\b").get("A") == r"a\\b"


def test_single_quotes_are_ordinary_characters():
    """Single quotes are not supported as quotes (the 1.4 lexer rule is commented out)."""
    assert parse("A = 'x'").get("A") == "'x'"


@pytest.mark.parametrize(
    "text",
    ["A =\nB = 1", "A =", "A = \t\nB = 1", "A = # a comment\nB = 1", "A =\r\nB = 1"],
)
def test_equal_followed_by_newline_or_end_gives_an_empty_value(text):
    """NAME = with nothing more on its line is an empty single attribute."""
    template = parse(text)
    assert template.get("A") == ""
    assert template.get("B") in ("1", None)


def test_empty_quoted_value_is_fine_in_a_vector():
    """K = "" is an empty value; only an unquoted-empty one is an error."""
    assert parse('A = [ K = "", L = 1 ]').get("A") == {"K": "", "L": "1"}


def test_vector_allows_blanks_and_newlines_around_brackets_and_commas():
    """Newlines may go around [ , and ]."""
    text = "DISK = [\n\n  A = 1\n  ,\n  B = 2\n\n]\nNEXT = x"
    assert list(parse(text)) == [("DISK", {"A": "1", "B": "2"}), ("NEXT", "x")]


def test_comments_inside_a_vector_are_skipped():
    """A comment after a pair's comma runs to the end of its line."""
    text = 'OS = [ kernel = "/vmlinuz", # para-virtualization\n  root = sda1 ] # end'
    assert parse(text).get("OS") == {"KERNEL": "/vmlinuz", "ROOT": "sda1"}


def test_first_occurrence_of_a_repeated_vector_key_wins():
    """As std::map::insert in OpenNebula: the second TARGET is dropped."""
    assert parse("DISK = [ TARGET = hda, target = hdb ]").get("DISK") == {"TARGET": "hda"}


def test_repeated_disk_attributes_keep_their_order():
    """Repeated attributes form a multimap in file order."""
    template = parse("DISK=[T=a]\nNAME=x\nDISK=[T=b]\nDISK=[T=c]")
    assert template.get_all("DISK") == [{"T": "a"}, {"T": "b"}, {"T": "c"}]
    assert [name for name, _ in template] == ["DISK", "NAME", "DISK", "DISK"]


def test_crlf_line_endings_read_like_lf():
    """A file saved with CRLF gives the same template as with LF."""
    text = 'A = 1\nB = [ C = 2,\n D = "x" ]\nE =\nF = y\n'
    assert parse(text.replace("\n", "\r\n")) == parse(text)


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# only a comment", "# a\n\n# b\n"])
def test_blank_or_comment_only_text_gives_an_empty_template(text):
    """Nothing to read is not an error."""
    assert len(parse(text)) == 0


def test_parse_entries_gives_the_position_of_each_name():
    """Entries carry the 1-based line and column of their name."""
    text = 'A=1\n  B=[C=2]\n\n# x\nD="a\nb" E=3'
    assert parse_entries(text) == [
        Entry("A", "1", 1, 1),
        Entry("B", {"C": "2"}, 2, 3),
        Entry("D", "a\nb", 5, 1),
        Entry("E", "3", 6, 4),
    ]


# --- syntax errors -----------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("NAME", "syntax error, unexpected $end, expecting EQUAL", 1, 5),
    ("NAME 1", "syntax error, unexpected VARIABLE, expecting EQUAL", 1, 6),
    ("= 1", "syntax error, unexpected EQUAL, expecting VARIABLE", 1, 1),
    ("x-y = 1", "syntax error, unexpected STRING, expecting VARIABLE", 1, 1),
    ("A=1B=2", "syntax error, unexpected EQUAL, expecting VARIABLE", 1, 5),
    ("A = ]", "syntax error, unexpected CBRACKET, expecting STRING or OBRACKET", 1, 5),
    ("A = [", "syntax error, unexpected $end, expecting VARIABLE", 1, 6),
    ("A = []", "syntax error, unexpected CBRACKET, expecting VARIABLE", 1, 6),
    ("A = [ B = 1,\n C = ]", "syntax error, unexpected CBRACKET, expecting STRING", 2, 6),
    ("A = [ B =\n 1 ]", "syntax error, unexpected newline, expecting STRING", 1, 10),
    ("A = [ B = 1, ]", "syntax error, unexpected CBRACKET, expecting VARIABLE", 1, 14),
    ("A = [ B = 1", "syntax error, unexpected $end, expecting COMMA or CBRACKET", 1, 12),
    ("A=1\nB=[C=1 D=2]", "syntax error, unexpected VARIABLE, expecting COMMA or CBRACKET", 2, 8),
    ("A = [ B = [ C = 1 ] ]", "syntax error, unexpected OBRACKET, expecting STRING", 1, 11),
    ('A = 1\nB = "open\nC = 2', "syntax error, unterminated quoted value, expecting '\"'", 2, 5),
    ('A = "ends with \\"', "syntax error, unterminated quoted value, expecting '\"'", 1, 5),
    ("A =\n[ B = 1 ]", "syntax error, unexpected OBRACKET, expecting VARIABLE", 2, 1),
    ("NAME\u00e9 = 1", "syntax error, unexpected STRING, expecting VARIABLE", 1, 1),
]


@pytest.mark.parametrize(("text", "reason", "line", "column"), SYNTAX_ERRORS)
def test_syntax_errors_name_the_token_and_its_position(text, reason, line, column):
    """Bad input raises TemplateSyntaxError in OpenNebula's wording, with line and column."""
    with pytest.raises(TemplateSyntaxError) as caught:
        parse(text)
    assert (caught.value.reason, caught.value.line, caught.value.column) == (reason, line, column)
    with pytest.raises(TemplateSyntaxError):
        parse_entries(text)


def test_syntax_error_message_ends_with_line_and_column():
    """str() of the error reads as one sentence with the position."""
    with pytest.raises(TemplateSyntaxError) as caught:
        parse("A = 1\n\n  B")
    assert str(caught.value) == "syntax error, unexpected $end, expecting EQUAL at line 3, column 4"


def test_long_runs_of_blanks_before_an_error_fail_fast():
    """The scanner does not backtrack exponentially over blanks (it used to)."""
    with pytest.raises(TemplateSyntaxError):
        parse("A=1" + " " * 100_000 + "!")


# --- the Template multimap ---------------------------------------------------------------------


def test_get_returns_the_first_occurrence_or_the_default():
    """get reads the first attribute of that name, vectors included."""
    template = Template([("NIC", {"IP": "1"}), ("NIC", {"IP": "2"})])
    assert template.get("nic") == {"IP": "1"}
    assert template.get("DISK") is None
    assert template.get("DISK", "none") == "none"


def test_get_str_skips_vectors():
    """get_str gives the first single attribute of that name only."""
    template = Template([("A", {"K": "v"}), ("A", "single")])
    assert template.get_str("A") == "single"
    assert Template([("A", {"K": "v"})]).get_str("A", "dflt") == "dflt"


def test_contains_is_case_insensitive():
    """Membership uses the upper-cased name."""
    template = Template([("Name", "x")])
    assert "name" in template
    assert "NAME" in template
    assert "OTHER" not in template


def test_add_upper_cases_names_and_keys_and_copies_vectors():
    """add stores a copy of a vector, with upper-cased keys."""
    vector = {"source": "/img"}
    template = Template()
    template.add("disk", vector)
    vector["source"] = "changed"
    assert list(template) == [("DISK", {"SOURCE": "/img"})]


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("BAD NAME", "x", ValueError),
        ("", "x", ValueError),
        ("NIC", {}, ValueError),
        ("NIC", {"bad-key": "x"}, ValueError),
        ("CPU", 1, TypeError),
        ("NIC", {"IP": 1}, TypeError),
    ],
)
def test_add_refuses_what_text_could_not_hold(name, value, error):
    """Bad names, empty vectors and non-strings are refused, keeping to_text/parse exact."""
    with pytest.raises(error):
        Template().add(name, value)


def test_set_replaces_every_occurrence_at_the_first_position():
    """set leaves one attribute, where the first one was."""
    template = parse("A=1 B=2 A=3 C=4")
    template.set("a", "9")
    assert list(template) == [("A", "9"), ("B", "2"), ("C", "4")]


def test_set_appends_an_absent_name():
    """set on a new name adds it at the end."""
    template = parse("A=1")
    template.set("B", {"k": "v"})
    assert list(template) == [("A", "1"), ("B", {"K": "v"})]


def test_remove_takes_every_occurrence_and_returns_the_values():
    """remove returns what it took, in order."""
    template = parse("NIC=[I=1] A=x NIC=[I=2]")
    assert template.remove("nic") == [{"I": "1"}, {"I": "2"}]
    assert list(template) == [("A", "x")]
    assert template.remove("NIC") == []


def test_merge_replaces_each_name_of_the_other_template():
    """Replace mode (host monitoring): names of the other replace ours, new ones are appended."""
    ours = parse("FREEMEMORY=1 HOSTNAME=h NIC=[I=1] NIC=[I=2]")
    ours.merge(parse("NIC=[I=3] FREEMEMORY=5 ARCH=x86_64"))
    assert list(ours) == [
        ("FREEMEMORY", "5"),
        ("HOSTNAME", "h"),
        ("NIC", {"I": "3"}),
        ("ARCH", "x86_64"),
    ]


def test_copy_is_independent_of_the_original():
    """Changing a copy, or its vectors, leaves the original alone."""
    original = parse("DISK=[T=a] A=1")
    duplicate = original.copy()
    duplicate.set("A", "2")
    duplicate.get_all("DISK")[0]["T"] = "changed"
    assert original == parse("DISK=[T=a] A=1")
    assert duplicate != original


def test_templates_compare_by_attributes_in_order():
    """Equality is over the ordered attributes; a template is not equal to a list."""
    assert parse("A=1 B=2") == Template([("a", "1"), ("b", "2")])
    assert parse("A=1 B=2") != parse("B=2 A=1")
    assert parse("A=1") != [("A", "1")]
    assert len(parse("A=1 A=2")) == 2


# --- rendering ---------------------------------------------------------------------------------


def test_to_text_writes_one_attribute_per_line_quoting_when_needed():
    """Plain values stay bare; blanks, quotes, backslashes and empty values are quoted."""
    template = Template(
        [("NAME", "ttylinux"), ("DESC", 'a "b" \\c'), ("EMPTY", ""), ("NIC", {"NETWORK": "One TD"})]
    )
    assert template.to_text() == (
        'NAME=ttylinux\nDESC="a \\"b\\" \\\\c"\nEMPTY=""\nNIC=[\n  NETWORK="One TD" ]\n'
    )


def test_to_xml_wraps_every_value_in_cdata_without_whitespace():
    """OpenNebula 2.0+ form: vectors as nested elements."""
    template = parse('NAME=vm DISK=[SOURCE="/img a", TARGET=hda] EMPTY=""')
    assert template.to_xml() == (
        "<TEMPLATE><NAME><![CDATA[vm]]></NAME>"
        "<DISK><SOURCE><![CDATA[/img a]]></SOURCE><TARGET><![CDATA[hda]]></TARGET></DISK>"
        "<EMPTY><![CDATA[]]></EMPTY></TEMPLATE>"
    )


def test_to_xml_of_an_empty_template_is_an_empty_element():
    """No attributes: <TEMPLATE/>, under any root name."""
    assert Template().to_xml() == "<TEMPLATE/>"
    assert Template().to_xml("USER_TEMPLATE") == "<USER_TEMPLATE/>"


def test_to_xml_uses_the_given_root():
    """The root element name is the caller's."""
    assert (
        Template([("A", "1")]).to_xml("MONITORING")
        == "<MONITORING><A><![CDATA[1]]></A></MONITORING>"
    )


def test_to_xml_splits_cdata_around_its_end_marker():
    """A value holding ]]> is split across CDATA sections."""
    assert Template([("A", "x]]>y")]).to_xml() == (
        "<TEMPLATE><A><![CDATA[x]]]]><![CDATA[>y]]></A></TEMPLATE>"
    )


def test_to_xml_writes_carriage_returns_as_character_references():
    """XML would turn a raw CR into LF, so it is written as &#13;."""
    assert Template([("A", "a\r\nb")]).to_xml() == (
        "<TEMPLATE><A><![CDATA[a]]>&#13;<![CDATA[\nb]]></A></TEMPLATE>"
    )


def test_to_xml_replaces_characters_xml_cannot_hold():
    """Control characters XML 1.0 forbids become U+FFFD, keeping the document well-formed."""
    xml = Template([("A", "a\x00b\x1bc")]).to_xml()
    assert xml == "<TEMPLATE><A><![CDATA[a\ufffdb\ufffdc]]></A></TEMPLATE>"
    assert parse_xml(xml).get("A") == "a\ufffdb\ufffdc"


def test_to_str_prints_the_cli_display():
    """onevm show form: NAME=value lines, vectors as NAME=[ then indented K=v lines."""
    template = parse(EC2_TTYLINUX)
    assert template.to_str() == (
        "EC2=[\n"
        "  AMI=ami-ccf615a5,\n"
        "  KEYPAIR=keypair,\n"
        "  AUTHORIZED_PORTS=22,\n"
        "  INSTANCETYPE=m1.small ]\n"
        'REQUIREMENTS=HOSTNAME = "ec2"'
    )


# --- the XML form ------------------------------------------------------------------------------


def test_parse_xml_reads_what_pyone_sends():
    """pyone's nested dict form: CDATA or plain text, vectors as nested elements."""
    xml = "<TEMPLATE><A><![CDATA[1]]></A><B><C>2</C></B></TEMPLATE>"
    assert list(parse_xml(xml)) == [("A", "1"), ("B", {"C": "2"})]


def test_parse_xml_ignores_the_root_name_and_whitespace_between_elements():
    """Any root; indentation between elements is not a value."""
    xml = "<VM>\n  <name>x</name>\n  <nic>\n    <ip>1.2.3.4</ip>\n  </nic>\n  <E/>\n</VM>\n"
    assert list(parse_xml(xml)) == [("NAME", "x"), ("NIC", {"IP": "1.2.3.4"}), ("E", "")]


def test_parse_xml_keeps_repeated_elements_and_first_repeated_key():
    """Repeated attributes stay in order; inside a vector the first key wins."""
    xml = "<T><NIC><IP>1</IP><IP>9</IP></NIC><NIC><IP>2</IP></NIC></T>"
    assert parse_xml(xml).get_all("NIC") == [{"IP": "1"}, {"IP": "2"}]


@pytest.mark.parametrize(
    ("xml", "reason", "line", "column"),
    [
        ("<TEMPLATE><A>1</B></TEMPLATE>", "syntax error, mismatched tag", 1, 17),
        ("<TEMPLATE>\n  <A>1</A>\n  <B>", "syntax error, no element found", 3, 6),
        ("<T><a-b>1</a-b></T>", "syntax error, invalid attribute name <a-b>", 1, 4),
        ("<T>\n<A><B><C>1</C></B></A></T>", "syntax error, <A><B> holds elements", 2, 4),
        ('<!DOCTYPE t [<!ENTITY x "y">]><t/>', "syntax error, DTDs are not accepted", 1, 1),
    ],
)
def test_parse_xml_errors_carry_a_position(xml, reason, line, column):
    """Malformed XML, bad names and too deep nesting raise TemplateSyntaxError."""
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_xml(xml)
    assert (caught.value.reason, caught.value.line, caught.value.column) == (reason, line, column)


@pytest.mark.parametrize("xml", ["<T><A>\ud800</A></T>", "<T>\n<A>x\udfff</A></T>"])
def test_parse_xml_refuses_lone_surrogates_with_a_syntax_error(xml):
    """Fuzzing finding (issue 10): a lone surrogate (what a client's invalid UTF-8 decodes to
    with surrogateescape) escaped parse_any as UnicodeEncodeError."""
    with pytest.raises(TemplateSyntaxError, match="invalid character"):
        parse_any(xml)


def test_a_megabyte_template_parses_or_fails_in_one_pass():
    """Long inputs stay linear: 1 MiB of attributes, of vector pairs, and of both ending in an
    error that sends the fast path back to the token parser."""
    lines = "A=1\n" * 2**18
    assert len(parse(lines)) == 2**18
    assert parse("V=[" + "K=v," * 2**18 + "L=w]").get("V") == {"K": "v", "L": "w"}
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_entries(lines + "B=[")
    assert caught.value.line == 2**18 + 1


def test_parse_any_chooses_xml_by_a_leading_angle_bracket():
    """XML if the text starts with < (after blanks), the template language otherwise."""
    assert parse_any("  \n<T><A>1</A></T>") == parse_any("A = 1") == Template([("A", "1")])


# --- properties --------------------------------------------------------------------------------

_NAME_CHARS = string.ascii_uppercase + string.digits + "_"
names = st.text(_NAME_CHARS, min_size=1, max_size=10)
values = st.one_of(st.text(), st.text('"\\#\n\r\t[],= ]>x'))
vectors = st.dictionaries(names, values, min_size=1, max_size=4)
templates = st.lists(st.tuples(names, st.one_of(values, vectors)), max_size=8).map(Template)

_XML_FORBIDDEN = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
xml_names = st.builds(
    str.__add__, st.sampled_from(string.ascii_uppercase + "_"), st.text(_NAME_CHARS)
)
xml_characters = st.characters(
    exclude_categories=("Cs",), exclude_characters=_XML_FORBIDDEN + "\ufffe\uffff"
)
# template_xml refuses any "<!DOCTYPE" in a document, even inside CDATA (its guard against
# DTD entity attacks scans the text): such a value is not XML-representable for onecloud
xml_values = st.one_of(st.text(xml_characters), st.text("<>&]\r\n\t x")).filter(
    lambda v: "<!DOCTYPE" not in v.upper()
)
xml_vectors = st.dictionaries(xml_names, xml_values, min_size=1, max_size=4)
xml_templates = st.lists(st.tuples(xml_names, st.one_of(xml_values, xml_vectors)), max_size=8).map(
    Template
)


@given(templates)
def test_text_round_trip_is_exact_for_any_template(template):
    """parse(t.to_text()) == t: quotes, backslashes, newlines, # and ]]> included."""
    assert parse(template.to_text()) == template


@given(xml_templates)
def test_xml_round_trip_is_exact_for_xml_representable_templates(template):
    """parse_xml(t.to_xml()) == t whenever names and values fit in XML 1.0."""
    assert parse_xml(template.to_xml()) == template


@given(templates)
def test_entries_point_at_the_names_in_rendered_text(template):
    """Each entry's line and column locate its name in the text."""
    text = template.to_text()
    lines = text.split("\n")
    for entry in parse_entries(text):
        line = lines[entry.line - 1]
        assert line[entry.column - 1 :].startswith(entry.name + "=")


template_like_text = st.text(alphabet=st.sampled_from(list('AB_1=[],#" \t\n\r\\x')), max_size=40)
# Valid attributes in front, so that the fast path hands over to the token parser midway.
template_like_texts = st.tuples(templates.map(Template.to_text), template_like_text).map("".join)


@settings(max_examples=400)
@given(template_like_text | template_like_texts)
def test_fast_path_agrees_with_the_token_parser(text):
    """The one-regex-per-attribute path gives what the token parser gives, or the same error."""
    try:
        expected = scan_tokens(text)
    except TemplateSyntaxError as error:
        with pytest.raises(TemplateSyntaxError) as caught:
            scan(text)
        assert str(caught.value) == str(error)
    else:
        assert scan(text) == expected
