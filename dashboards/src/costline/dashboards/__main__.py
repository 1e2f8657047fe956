"""`python -m costline.dashboards build [--out DIR]` writes the generated files; `check` exits 1 on drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from costline.dashboards.build import default_output_dir, drift, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m costline.dashboards", description=__doc__)
    parser.add_argument("command", choices=("build", "check"))
    parser.add_argument("--out", type=Path, default=default_output_dir(), help="output directory (%(default)s)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in write(args.out):
            print(path)
        return 0
    stale = drift(args.out)
    for path in stale:
        print(f"out of date: {args.out / path}", file=sys.stderr)
    if stale:
        print("run `make dashboards` and commit the result", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
