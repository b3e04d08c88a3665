"""Reading a template file named on the command line (onevm create, onehost update...)."""

from __future__ import annotations

from cli.common import CliError


def read_template(path: str) -> str:
    """The text of a template file; an unreadable or non-UTF-8 one is a ``CliError`` naming it.

    NOTE: OpenNebula's Ruby CLI sends the file's bytes as they are. onecloud speaks XML-RPC in
    UTF-8 only, so rather than guess (a Latin-1 "café" would arrive as "cafÃ©" or not at all)
    it names the first byte that is not UTF-8, and the user converts the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"cannot read template file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CliError(not_utf8(f"template file {path}", e)) from e


def not_utf8(what: str, err: UnicodeDecodeError) -> str:
    """One line naming what was read and its first byte that is not UTF-8, with the offset."""
    byte = err.object[err.start : err.start + 1].hex()
    return (
        f"{what} is not UTF-8 text: byte 0x{byte} at offset {err.start} "
        "(convert it, e.g. iconv -f latin1 -t utf-8)"
    )
