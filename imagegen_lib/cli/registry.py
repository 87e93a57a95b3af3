"""The one table of ``imagegen`` sub-commands, which each command module fills itself at import.

    @command("ship", help="copy a trained checkpoint into checkpoints/ and the MANIFEST")
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoint", type=Path)
        p.set_defaults(func=run)          # called as run(args, argv) -> exit status

:func:`add_parsers` turns a table into argparse sub-parsers, in the order of the table: the
top-level commands (:data:`COMMANDS`, filled in the order :mod:`.main` imports their modules) and
``imagegen train``'s models (:data:`.train.TRAINERS`, whose rows also carry the run function).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, Iterable

__all__ = ["Command", "Run", "COMMANDS", "command", "register", "table", "add_parsers"]

Run = Callable[[argparse.Namespace, list[str]], int]


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, its line in the parent's ``--help``, the function that adds its
    arguments, its own ``--help`` text, and (when the arguments do not set ``func``) what runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    description: str | None = None
    run: Run | None = None


COMMANDS: dict[str, Command] = {}


def register(into: dict[str, Command], entry: Command, what: str) -> None:
    """Add ``entry`` to a table; a second entry of the same name is a mistake, not an override."""
    if entry.name in into:
        first = into[entry.name].add_arguments.__module__
        raise ValueError(f"{what} {entry.name!r} is registered twice (by {first}, then by "
                         f"{entry.add_arguments.__module__}); give one of them another name")
    into[entry.name] = entry


def command(name: str, *, help: str, description: str | None = None):
    """Register the decorated function as ``imagegen NAME``: it adds the arguments and sets ``func``."""
    def decorate(add_arguments: Callable[[argparse.ArgumentParser], None]):
        register(COMMANDS, Command(name, help, add_arguments, description), "imagegen command")
        return add_arguments
    return decorate


def table(entries: Iterable[Command], what: str) -> dict[str, Command]:
    """A table written out as rows (its order is the ``--help`` order), checked like :data:`COMMANDS`."""
    rows: dict[str, Command] = {}
    for entry in entries:
        register(rows, entry, what)
    return rows


def add_parsers(sub: argparse._SubParsersAction, entries: Iterable[Command], only: str | None = None) -> None:
    """One sub-parser per entry. With ``only``, the others are listed but get no arguments: adding
    some of them imports torch for its defaults (~2 s on 2 cores), which a command that does not
    need it (``make data`` runs ``imagegen data download`` before every build) should not wait for."""
    for entry in entries:
        parser = sub.add_parser(entry.name, help=entry.help, description=entry.description)
        if only is None or only == entry.name:
            entry.add_arguments(parser)
            if entry.run is not None:
                parser.set_defaults(func=entry.run)
