"""`python -m bench [name ...]`: run every benchmark (or the named ones) in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                           if not m.name.startswith("_") and m.name not in ("common",))
    for name in names:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


main(sys.argv[1:])
