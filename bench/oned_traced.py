"""oned with its memory report (oned/memprofile.py), until oned/__main__.py installs it itself.

Runs ``oned.__main__.main`` as ``python -m oned`` would, after starting tracemalloc (when
ONECLOUD_TRACEMALLOC names the report file) and arranging for the report to be written at
shutdown with the pools oned loaded:

    ONECLOUD_TRACEMALLOC=/tmp/oned-mem.json .venv/bin/python bench/oned_traced.py -f
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oned import __main__ as oned_main
from oned import memprofile


def main() -> int:
    memprofile.start_from_env()
    load_pools = oned_main.load_pools

    def loaded(*args: object, **kwargs: object) -> object:
        from twisted.internet import reactor

        pools = load_pools(*args, **kwargs)  # type: ignore[arg-type]
        memprofile.dump_at_shutdown(reactor, pools)
        return pools

    oned_main.load_pools = loaded  # type: ignore[assignment]
    return oned_main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
