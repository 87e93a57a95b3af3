"""``imagegen``'s entry point: the parser built from the command registry, and how a run ends.

Bad input (unknown model, bad flag value, unwritable --out, missing data, broken checkpoint) ends
with one line ``imagegen: error: ...`` and exit status 2; ``IMAGEGEN_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from . import registry

__all__ = ["COMMAND_MODULES", "build_parser", "ordered_commands", "main"]

# Each module registers its command when imported; this order is the order of `imagegen --help`.
COMMAND_MODULES = ("train", "sample", "ship", "eval", "eval_sr", "data", "toy")

EXIT_USAGE = 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``imagegen`` parser. With ``only``, every command is listed but only the one of that name
    gets its arguments (none does for ``-h`` or ``--version``): see :func:`.registry.add_parsers`."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    usage = sys.modules[__package__].__doc__  # the package docstring: its first paragraph is --help's
    parser = argparse.ArgumentParser(prog="imagegen", description=usage.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"imagegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registry.add_parsers(sub, ordered_commands(), only=only)
    return parser


def ordered_commands() -> list[registry.Command]:
    """The registered commands in the order of :data:`COMMAND_MODULES` (then any registered elsewhere),
    not in the order of registration: a program may import one command's module before the others."""
    rank = {f"{__package__}.{name}": i for i, name in enumerate(COMMAND_MODULES)}
    commands = list(registry.COMMANDS.values())
    return sorted(commands, key=lambda c: rank.get(c.add_arguments.__module__, len(rank)))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the command named gets its arguments: some others import torch for their defaults.
    args = build_parser(only=argv[0] if argv else None).parse_args(argv)
    try:
        return args.func(args, argv)
    except KeyboardInterrupt:
        if args.command == "data":  # fetch_file deleted the file it was writing; the finished ones are verified
            print("\ninterrupted; no partial file was kept (run it again to fetch the rest)", file=sys.stderr)
        else:
            print("\ninterrupted; the last checkpoint was saved (use --resume to continue)", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        # Our own errors (DataError, CheckpointError, bad values, unwritable paths) carry messages
        # that say what to fix; a traceback would only bury them.
        if os.environ.get("IMAGEGEN_DEBUG"):
            raise
        print(f"imagegen: error: {e}", file=sys.stderr)
        return EXIT_USAGE
