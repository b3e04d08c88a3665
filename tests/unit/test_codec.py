"""The one codec for every value that crosses into a driver (drivers/protocol.py), issue 10.

Finding 1 of issue 10: values were joined with spaces and re-split by the drivers, so a newline
or a space in a template value added commands or arguments. These tests hold the codec to
"what goes in as one word comes out as that one word", for any string at all.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocol import (
    EMPTY_WORD,
    ProtocolError,
    Request,
    decode_word,
    decode_words,
    encode_word,
    encode_words,
    parse_request,
)

# st.text() already draws newlines, NUL, blanks, quotes and any unicode; these make sure the
# interesting ones come up often, alone and mixed.
HOSTILE = st.sampled_from(["\n", "\r\n", "\0", " ", "\t", "'", '"', "%", "%25", "`", "$(", "é"])
WORDS = st.lists(st.text() | st.lists(HOSTILE | st.text(max_size=3)).map("".join), max_size=8)


@pytest.mark.parametrize(
    "word",
    ["/srv/images/ttylinux.img", "host01:/var/lib/one/7/images/disk.0", "512", "-", "LOCAL",
     "user@host:22", "a,b=c+d~e", "ext3", "http://example.com/a.img"],
)  # fmt: skip
def test_plain_values_encode_to_themselves_so_lines_look_like_opennebulas(word):
    """Paths, host:path, numbers and names cross the wire exactly as OpenNebula writes them."""
    assert encode_word(word) == word
    assert decode_word(word) == word


@pytest.mark.parametrize(
    ("word", "token"),
    [
        ("a b", "a%20b"),
        ("/x/img H:/x/d\nDELETE H:/victim", "/x/img%20H:/x/d%0ADELETE%20H:/victim"),
        ("", EMPTY_WORD),
        ("''", "%27%27"),
        ("%", "%25"),
        ("\0", "%00"),
        ("é", "%C3%A9"),
        ("$(id)`id`;|&<>*?", "%24%28id%29%60id%60%3B%7C%26%3C%3E%2A%3F"),
    ],
)
def test_anything_else_is_percent_encoded_utf8_and_the_empty_string_has_a_token(word, token):
    """Blanks, control characters, quotes, % and non-ASCII become %XX; "" is its own token."""
    assert encode_word(word) == token
    assert decode_word(token) == word


@pytest.mark.parametrize(
    "token",
    ["a b", "a\tb", "it's", '"', "%", "%4", "%zz", "%e9", "%41", "%C3", "%FF", "é", "'''", "a''"],
)
def test_the_decoder_refuses_any_token_the_encoder_could_not_have_made(token):
    """Strict: raw unsafe characters, broken or lower-case escapes, escapes of safe characters
    and bytes that are not UTF-8 are ProtocolErrors naming the token."""
    with pytest.raises(ProtocolError, match="malformed word"):
        decode_word(token)


@given(WORDS)
def test_any_words_come_back_identical_and_alone_from_one_line(words):
    """Issue 10's codec property: whatever the strings (newlines, NUL, blanks, quotes, %,
    unicode), the line is one printable ASCII line of exactly len(words) blank-separated
    tokens that decode back to the same words."""
    line = encode_words(words)
    assert line.isascii() and (line.isprintable() or not line)
    assert len(line.split()) == len(words)
    assert line.split() == line.split(" ") or not words
    assert decode_words(line) == words


@given(st.sampled_from(["DEPLOY", "TRANSFER", "EXECUTE", "MONITOR"]), st.integers(0), WORDS)
def test_any_request_arguments_come_back_as_the_same_arguments(action, ident, args):
    """A request line built with the encoder (as DriverChannel.request does) parses back to
    the action, the id and exactly the arguments, however hostile they are."""
    line = encode_words([action, ident, *args]) + "\n"
    assert line.count("\n") == 1 and "\r" not in line and "\0" not in line
    assert parse_request(line) == Request(action, str(ident), tuple(args))
