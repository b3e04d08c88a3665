"""The command skeleton shared by onehost, onevm and oneuser.

Each CLI declares its subcommands as a table of ``Command`` values (name, arguments, one small
``run`` function) and calls ``run_cli``. ``run_cli`` owns argument parsing, ``--help``, the
client, and the error contract: any failure prints ONE line ``Error: <message>`` on stderr and
exits 255 (OpenNebula's ``exit -1``); oned unreachable, or refusing the session, is
``<prog> <command>: ...`` naming the endpoint (and the user). It also holds the small helpers
every CLI needs: reading result XML, the ``--list`` columns and the ``-x``/``-j``/``-y`` outputs
(``cli.output``). Names and id ranges are ``cli/names.py``; template files ``cli/template_file.py``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from cli.output import render
from cli.table import Column, columns_help, select_columns
from oned.client import OneCallError, OneClient, OneClientError
from oned.errors import AuthenticationError
from oned.locations import default_endpoint

EXIT_ERROR = 255

ENVIRONMENT = """\
environment:
  ONE_XMLRPC  the XML-RPC endpoint of oned (default: http://localhost:2633/RPC2)
  ONE_AUTH    path of the file whose first line is <username>:<password>
              (default: ~/.one/one_auth)"""


class CliError(Exception):
    """A user-facing failure; ``str(err)`` is printed after ``Error: ``."""


class UsageError(CliError):
    """Bad command line (unknown command, missing or extra arguments)."""


class EndpointError(CliError):
    """oned could not be reached or refused the session: printed as ``<prog> <command>: ...``."""


@dataclass(frozen=True)
class Arg:
    """A positional argument: ``dest`` in the namespace, ``<metavar>`` in the help."""

    dest: str
    metavar: str
    help: str = ""
    nargs: str | None = None

    def usage(self) -> str:
        word = f"<{self.metavar}>"
        return {"?": f"[{word}]", "+": f"{word}...", "*": f"[{word}...]"}.get(
            self.nargs or "", word
        )


@dataclass(frozen=True)
class Command:
    """One subcommand: ``run(ctx, opts)`` does the work and returns an exit code (or None=0).

    ``options`` picks shared flags: ``"list"`` (``--list col,...``), ``"delay"`` (``--delay``)
    and ``"recover"`` (one of ``--success --failure --retry --delete``, as ``opts.operation``,
    one.vm.recover's number);
    ``columns`` is the column layout that ``--list`` chooses from (shown in the command's help);
    ``flags`` are options of this command alone; ``details`` ends its ``--help`` (examples).
    """

    name: str
    summary: str
    run: Callable[[Context, argparse.Namespace], int | None]
    args: tuple[Arg, ...] = ()
    options: tuple[str, ...] = ()
    columns: Mapping[str, Column] | None = None
    flags: tuple[Flag, ...] = ()
    details: str = ""

    def usage(self) -> str:
        flags = [*(_OPTION_USAGE[o] for o in self.options), *(f.usage for f in self.flags)]
        return " ".join([self.name, *flags, *(a.usage() for a in self.args)])


@dataclass(frozen=True)
class Flag:
    """An option of one command: ``add_argument(*names, **spec)``, shown as ``usage``."""

    names: tuple[str, ...]
    usage: str
    spec: Mapping[str, Any] = field(default_factory=dict)


_OPTION_USAGE = {
    "list": "[--list <col,...>]",
    "delay": "[--delay <seconds>]",
    "recover": "--success|--failure|--retry|--delete",
}
# one.vm.recover's operations (modern OpenNebula's numbers), spelt as onevm's flags.
RECOVER_OPERATIONS = {"failure": 0, "success": 1, "retry": 2, "delete": 3}


@dataclass
class Context:
    """What a command may use: parsed options, a lazily opened client and the output stream."""

    opts: argparse.Namespace
    client_factory: Callable[[], Any]
    out: TextIO
    tty: bool = False
    _client: Any = field(default=None, repr=False)

    def call(self, method: str, *params: Any) -> Any:
        """``method(session, *params)`` on oned; failures raise ``OneClientError``, and
        ``EndpointError`` when oned is not reached or refuses the session."""
        client = self._connected()
        try:
            return client.call(method, *params)
        except OneCallError as e:
            if e.code != AuthenticationError.code:
                raise
            endpoint = getattr(client, "endpoint", None) or default_endpoint()
            user = self.user() or "(none)"
            raise EndpointError(f"oned at {endpoint} refused user {user}: {_one_line(e)}") from e
        except OneClientError as e:
            endpoint = getattr(client, "endpoint", None) or default_endpoint()
            text = _one_line(e)
            raise EndpointError(text if endpoint in text else f"oned at {endpoint}: {text}") from e

    def formatted(self, text: str) -> str | None:
        """``text`` (XML from oned) as ``-x``, ``-j`` or ``-y`` asks; None when none was given."""
        fmt = output_format(self.opts)
        if fmt is None:
            return None
        try:
            return render(text, fmt)
        except ValueError as e:
            raise CliError(str(e)) from e

    def document(self, text: str) -> bool:
        """Print ``text`` as ``formatted``; False (nothing printed) without ``-x``/``-j``/``-y``."""
        doc = self.formatted(text)
        if doc is not None:
            self.print(doc)
        return doc is not None

    def user(self) -> str:
        """The caller's user name: the session's part before ``:`` ('' when unknown)."""
        return str(getattr(self._connected(), "session", "")).partition(":")[0]

    def _connected(self) -> Any:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def print(self, *lines: str) -> None:
        for line in lines:
            self.out.write(line + "\n")

    def write_now(self, text: str) -> None:
        """Write ``text`` and flush (``top`` redraws a screen at a time)."""
        self.out.write(text)
        self.out.flush()

    def verbose(self, line: str) -> None:
        """Print ``line`` only with ``-v`` (commands are silent on success otherwise)."""
        if self.opts.verbose:
            self.print(line)

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()


# ---------------------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises ``UsageError`` instead of printing usage and exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _add_common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """-v, -x, -j and -y, accepted both before and after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="verbose mode"
    )
    parser.add_argument(
        "-x", "--xml", action="store_true", default=default, help="print the raw XML of oned"
    )
    parser.add_argument(
        "-j", "--json", action="store_true", default=default, help="print oned's XML as JSON"
    )
    parser.add_argument(
        "-y", "--yaml", action="store_true", default=default, help="print oned's XML as YAML"
    )


def output_format(opts: argparse.Namespace) -> str | None:
    """The output ``-x``, ``-j`` or ``-y`` asks (xml, json, yaml), or None; two is an error."""
    chosen = [name for name in ("xml", "json", "yaml") if getattr(opts, name, False)]
    if len(chosen) > 1:
        raise UsageError(f"choose one output: {', '.join('--' + c for c in chosen)}")
    return chosen[0] if chosen else None


def _add_options(parser: argparse.ArgumentParser, options: Iterable[str]) -> None:
    if "recover" in options:
        group = parser.add_mutually_exclusive_group(required=True)
        for name, operation in RECOVER_OPERATIONS.items():
            group.add_argument(
                f"--{name}",
                dest="operation",
                action="store_const",
                const=operation,
                help=f"one.vm.recover operation {operation}",
            )
    if "list" in options:
        parser.add_argument(
            "-l", "--list", metavar="COLUMNS", help="comma-separated columns to show"
        )
    if "delay" in options:
        parser.add_argument(
            "-d",
            "--delay",
            type=float,
            default=1.0,
            metavar="SECONDS",
            help="seconds between refreshes (default: 1)",
        )


def commands_help(commands: Sequence[Command]) -> str:
    """Every subcommand with its arguments and summary, for the top-level ``--help``."""
    lines = ["commands:"]
    for cmd in commands:
        lines.append(f"  {cmd.usage()}")
        lines.append(f"        {cmd.summary}")
    return "\n".join(lines)


def build_parser(
    prog: str, description: str, commands: Sequence[Command]
) -> argparse.ArgumentParser:
    """The argparse tree of one CLI; ``opts.command`` is the chosen ``Command``."""
    parser = _Parser(
        prog=prog,
        usage=f"{prog} [-h] [-v] [-x|-j|-y] <command> [<args>]",
        description=f"{description}\n\n{commands_help(commands)}",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(parser, suppress=False)
    sub = parser.add_subparsers(
        dest="command_name", metavar="<command>", parser_class=_Parser, help=argparse.SUPPRESS
    )
    for cmd in commands:
        epilog = ENVIRONMENT
        if cmd.columns:
            epilog = f"columns (for --list):\n{columns_help(cmd.columns)}\n\n{ENVIRONMENT}"
        p = sub.add_parser(
            cmd.name,
            prog=f"{prog} {cmd.name}",
            description="\n\n".join(filter(None, (cmd.summary, cmd.details))),
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common_options(p, suppress=True)
        _add_options(p, cmd.options)
        for flag in cmd.flags:
            p.add_argument(*flag.names, **flag.spec)
        for arg in cmd.args:
            p.add_argument(arg.dest, metavar=arg.metavar, help=arg.help, nargs=arg.nargs)
        p.set_defaults(command=cmd)
    return parser


# ---------------------------------------------------------------------------- running


def run_cli(
    prog: str,
    description: str,
    commands: Sequence[Command],
    argv: Sequence[str] | None = None,
    client_factory: Callable[[], Any] = OneClient,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Parse ``argv``, run the chosen command, map every failure to ``Error: ...`` and 255."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser(prog, description, commands)
    ctx: Context | None = None
    try:
        opts = _parse(parser, prog, argv)
        ctx = Context(opts, client_factory, out, tty=_isatty(out))
        return opts.command.run(ctx, opts) or 0
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except EndpointError as e:
        err.write(f"{prog} {ctx.opts.command.name if ctx else '?'}: {_one_line(e)}\n")
        return EXIT_ERROR
    except (CliError, OneClientError) as e:
        err.write(f"Error: {_one_line(e)}\n")
        return EXIT_ERROR
    except BrokenPipeError:  # `onevm list | head`: the reader left; not an error
        _silence(out)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if ctx is not None:
            ctx.close()


def _parse(parser: argparse.ArgumentParser, prog: str, argv: Sequence[str] | None) -> Any:
    opts = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if getattr(opts, "command", None) is None:
        raise UsageError(f"{prog}: missing command (see '{prog} --help')")
    return opts


def _silence(stream: TextIO) -> None:
    """Point a closed pipe at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _one_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    return " ".join(text.split())


# ---------------------------------------------------------------------------- result XML


def parse_xml(text: str) -> ET.Element:
    """The root element of an XML document from oned; garbage is a ``CliError``."""
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        raise CliError(f"malformed XML from oned: {e}") from e


def text_of(elem: ET.Element, path: str, default: str = "") -> str:
    """The text at ``path`` under ``elem`` (``default`` when missing or empty)."""
    value = elem.findtext(path)
    return value if value else default


def int_of(elem: ET.Element, path: str, default: int = 0) -> int:
    """The number at ``path`` under ``elem`` as an int (``"12.5"`` -> 12; junk -> default)."""
    value = elem.findtext(path)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return default


def chosen_columns(
    opts: argparse.Namespace, layout: Mapping[str, Column], default: Sequence[str]
) -> list[Column]:
    """The ``--list`` columns of ``layout`` (default order without it); unknown is a usage error."""
    try:
        return select_columns(layout, default, getattr(opts, "list", None))
    except ValueError as e:
        raise UsageError(str(e)) from e
