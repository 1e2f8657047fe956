"""The `costline` command.

`costline fingerprint KEY` (or the key on standard input) prints the key's fingerprint; `costline --version` the
installed distributions' versions. When the processor
distribution is installed, its sub-commands (`serve`, `check-config`, `usage`, `reprice`, ...) are added by
`costline.processor.cli.register(subparsers)`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from costline.fingerprint import fingerprint
from costline.instrumentation.version import __version__


def _fingerprint_command(args: argparse.Namespace) -> int:
    key = args.key if args.key is not None else sys.stdin.readline().strip()
    if not key:
        print("costline fingerprint: no API key given (argument or standard input)", file=sys.stderr)
        return 2
    print(fingerprint(key))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costline", description="Costline: who spent what on LLMs.")
    versions = [f"instrumentation {__version__}"]
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fp = subparsers.add_parser(
        "fingerprint",
        help="print the fingerprint of an API key (first 16 hex chars of its SHA-256)",
        description="Print the fingerprint Costline records for an API key. Reads the key from standard input "
        "when no argument is given, which keeps it out of the shell history.",
    )
    fp.add_argument("key", nargs="?", help="the API key (omit to read it from standard input)")
    fp.set_defaults(func=_fingerprint_command)
    try:
        from costline.processor.cli import register
    except ModuleNotFoundError as err:
        # Only "not installed" is tolerated: a processor that fails to import for another reason must say so.
        if err.name not in ("costline.processor", "costline.processor.cli"):
            raise
    else:
        from costline.processor.version import __version__ as processor_version

        register(subparsers)
        versions.append(f"processor {processor_version}")
    # Each installed distribution's own version: they are released together but installed apart.
    parser.add_argument("--version", action="version", version=f"costline: {', '.join(versions)}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
