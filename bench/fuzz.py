"""Fuzz the parsers that read what users send (not collected by pytest; issue 10).

    .venv/bin/python bench/fuzz.py [--target template|template_xml|expr|xmlrpc|all]
                                   [--count 1000000] [--seed 1] [--engine gen|atheris]
    .venv/bin/python bench/fuzz.py --long

Each input goes to one target: the template text parser (``parse`` and ``parse_entries``, and
``parse(t.to_text()) == t`` when it parses), the XML template parser (``parse_any``),
REQUIREMENTS and RANK (compiled, then evaluated and explained against host-like dicts), or
the XML-RPC request decoder (``decode_call``, which oned runs on every body). A target may
return or raise its documented exception (TemplateSyntaxError, ExpressionError, ValueError);
anything else, or taking longer than ``--deadline`` seconds, is a finding: its input is
written under a temporary folder as a reproducer and the run goes on.

``--engine gen`` (the default, and what tests/unit/test_fuzz.py runs with a small count) mixes
random text and bytes, mutations of valid and hostile seeds (deep nesting, huge numbers,
entities, DTDs and billion laughs, invalid UTF-8) and grammar-generated inputs, from
``--seed``: the same seed gives the same inputs. ``--engine atheris`` runs libFuzzer's
coverage-guided mutation from the same seeds (``pip install atheris``), one process per
target, reproducers in the same folder. ``--long`` only times each target on inputs of about
1 MiB shaped to find quadratic work, and fails if one takes a second.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fuzz_inputs import GENERATORS, HOSTS, long_inputs, seeds_of
from oned.errors import TemplateSyntaxError
from oned.expr import ExpressionError, explain, parse_rank, parse_requirements
from oned.rpc.marshal import decode_call
from oned.template import parse
from oned.template_parser import parse_entries, scan, scan_tokens
from oned.template_xml import parse_any


def check_template(text: str) -> None:
    """parse and parse_entries agree, the fast path and parse agree with the token parser (same
    result or same error), and rendering what parsed reads back the same."""
    try:
        expected = scan_tokens(text)
    except TemplateSyntaxError as error:
        for path in (scan, parse):  # the fast path, and what one.vm.allocate calls
            try:
                path(text)
            except TemplateSyntaxError as again:
                assert str(again) == str(error), f"{path.__name__}: {again}, tokens: {error}"
                continue
            raise AssertionError(
                f"{path.__name__} accepted what the token parser refused: {error}"
            ) from None
        raise error
    assert scan(text) == expected, "the fast path and the token parser disagree"
    entries = parse_entries(text)
    template = parse(text)
    assert [(e.name, e.value) for e in entries] == list(template), "parse_entries != parse"
    assert parse(template.to_text()) == template, "parse(to_text()) changed the template"


def check_template_xml(text: str) -> None:
    parse_any(text)


def check_expr(text: str) -> None:
    """Both languages; raises ExpressionError only when neither compiles ``text``."""
    refused = []
    for compile_ in (parse_requirements, parse_rank):
        try:
            compiled = compile_(text)
        except ExpressionError as error:
            refused.append(error)
            continue
        for host in HOSTS:
            result = compiled(host)
            if compile_ is parse_rank:
                assert isinstance(result, float) and result - result == 0, f"rank {result!r}"
            else:
                assert isinstance(result, bool), f"requirement {result!r}"
                explain(compiled, host)
    if len(refused) == 2:
        raise refused[0]


def check_xmlrpc(body: bytes) -> None:
    method, params = decode_call(body)
    assert isinstance(method, str) and isinstance(params, tuple)
    repr(params)  # what a log line or a signature check would do with a deep value


@dataclass(frozen=True)
class Target:
    check: Callable
    documented: tuple[type[Exception], ...]
    binary: bool  # inputs are bytes (else str)


TARGETS = {
    "template": Target(check_template, (TemplateSyntaxError,), False),
    "template_xml": Target(check_template_xml, (TemplateSyntaxError,), False),
    "expr": Target(check_expr, (ExpressionError,), False),
    "xmlrpc": Target(check_xmlrpc, (ValueError,), True),
}


class Hang(BaseException):
    """Raised by the watchdog inside an input that passed its deadline."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def run_one(target: Target, data: str | bytes, deadline: float) -> str | None:
    """ "refused" if ``target`` raised its documented exception, None if it returned, else
    what went wrong (a traceback, or a hang)."""
    signal.setitimer(signal.ITIMER_REAL, deadline)
    started = time.perf_counter()
    outcome = None
    try:
        target.check(data)
    except target.documented:
        outcome = "refused"
    except Hang:
        return f"hang: still running after {deadline} s"
    except Exception:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - started
    return f"hang: took {elapsed:.2f} s" if elapsed > deadline else outcome


@dataclass
class Tally:
    name: str
    count: int = 0
    refused: int = 0  # inputs answered with the documented exception
    failures: int = 0
    largest: int = 0
    seconds: float = 0.0


def fuzz(
    name: str, inputs: Iterator[str | bytes], deadline: float, out: Path | None, progress: int = 0
) -> Tally:
    """Run every input of ``inputs`` against target ``name``; reproducers go to ``out``."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        return _fuzz(name, inputs, deadline, out, progress)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _fuzz(
    name: str, inputs: Iterator[str | bytes], deadline: float, out: Path | None, progress: int
) -> Tally:
    target, tally = TARGETS[name], Tally(name)
    started = time.perf_counter()
    for data in inputs:
        tally.count += 1
        tally.largest = max(tally.largest, len(data))
        problem = run_one(target, data, deadline)
        if problem == "refused":
            tally.refused += 1
        elif problem is not None:
            tally.failures += 1
            _report(name, tally.failures, data, problem, out)
        if progress and tally.count % progress == 0:
            rate = tally.count / (time.perf_counter() - started)
            print(
                f"  {name}: {tally.count:,} inputs, {tally.failures} failures, {rate:,.0f}/s",
                flush=True,
            )
    tally.seconds = time.perf_counter() - started
    return tally


def _report(name: str, n: int, data: str | bytes, problem: str, out: Path | None) -> None:
    if out is None or n > 50:
        return
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    path = out / f"{name}-{n}.bin"
    path.write_bytes(raw)
    path.with_suffix(".txt").write_text(problem)
    print(f"  {name}: FAILURE {n} ({len(raw)} bytes) -> {path}\n{problem[-600:]}", flush=True)


def generated(name: str, count: int, seed: int) -> Iterator[str | bytes]:
    """``count`` inputs for ``name`` from the built-in generator; the same seed, the same."""
    rng = Random(f"{name}:{seed}")
    make = GENERATORS[name]
    for _ in range(count):
        yield make(rng)


def _atheris(name: str, count: int, seed: int, deadline: float, out: Path) -> int:
    """Run libFuzzer over ``name`` in this process (it exits when done)."""
    import atheris

    target = TARGETS[name]
    corpus = out / f"corpus-{name}"
    corpus.mkdir(exist_ok=True)
    for i, data in enumerate(seeds_of(name, Random(seed))):
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
        (corpus / f"seed-{i}").write_bytes(raw)

    def one_input(raw: bytes) -> None:
        data = raw if target.binary else raw.decode("utf-8", "surrogateescape")
        with contextlib.suppress(target.documented):
            target.check(data)

    _instrument(atheris, ("oned.", "xmlrpc.", "xml.", "fnmatch"))
    argv = [
        sys.argv[0],
        f"-runs={count}",
        f"-seed={seed}",
        f"-timeout={max(1, int(deadline))}",
        "-max_len=65536",
        f"-artifact_prefix={out}/{name}-",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


# What --long times: the parsers alone (not the round trip and evaluation the fuzzing adds), and
# uncached (parse_requirements and parse_rank keep an lru_cache).
PARSERS = {
    "template": (parse, parse_entries),
    "template_xml": (parse_any,),
    "expr": (parse_requirements.__wrapped__, parse_rank.__wrapped__),
    "xmlrpc": (decode_call,),
}


def time_long() -> int:
    """The best of three runs of each parser on each ~1 MiB input of ``long_inputs``."""
    worst = 0.0
    for name, what, data in long_inputs():
        for function in PARSERS[name]:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                with contextlib.suppress(TARGETS[name].documented):
                    function(data)
                times.append(time.perf_counter() - started)
            worst = max(worst, min(times))
            print(f"{function.__name__:18} {len(data):>9,} {min(times) * 1000:5.0f} ms  {what}")
    return 0 if worst < 1.0 else 1


def _instrument(atheris: Any, prefixes: tuple[str, ...]) -> None:
    """Coverage for the parsers' own Python code (and the stdlib parts they run), not for
    everything loaded: instrumenting ``re``'s compiler made REQUIREMENTS 20 times slower."""
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(prefixes):
            atheris.instrument_func(obj)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=1.0, help="seconds per input")
    parser.add_argument("--engine", choices=["gen", "atheris"], default="gen")
    parser.add_argument("--out", type=Path, help="reproducer folder (default: a new temp dir)")
    parser.add_argument("--long", action="store_true", help="only time the ~1 MiB inputs")
    args = parser.parse_args(argv)
    if args.long:
        return time_long()
    out = args.out or Path(tempfile.mkdtemp(prefix="onecloud-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    names = list(TARGETS) if args.target == "all" else [args.target]
    print(
        f"engine {args.engine}, seed {args.seed}, {args.count:,} inputs per target, "
        f"deadline {args.deadline} s, reproducers in {out}",
        flush=True,
    )
    if args.engine == "atheris":
        if len(names) == 1:
            return _atheris(names[0], args.count, args.seed, args.deadline, out)
        codes = [_atheris_child(n, args, out) for n in names]
        return max(codes)
    failed = 0
    for name in names:
        inputs = generated(name, args.count, args.seed)
        tally = fuzz(name, inputs, args.deadline, out, progress=max(args.count // 10, 1))
        failed += tally.failures
        print(
            f"{name}: {tally.count:,} inputs in {tally.seconds:.1f} s "
            f"({tally.count / max(tally.seconds, 1e-9):,.0f}/s), {tally.refused} refused, "
            f"{tally.failures} failures, largest {tally.largest:,} characters",
            flush=True,
        )
    return 1 if failed else 0


def _atheris_child(name: str, args: argparse.Namespace, out: Path) -> int:
    command = [
        sys.executable,
        __file__,
        "--engine",
        "atheris",
        "--target",
        name,
        "--count",
        str(args.count),
        "--seed",
        str(args.seed),
        "--deadline",
        str(args.deadline),
        "--out",
        str(out),
    ]
    print(f"== {name}", flush=True)
    return subprocess.call(command, env=dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
