"""The one error a command raises for a reason the user can act on (cli/main.py prints it as one line).

A module of its own so that every command module can raise it without importing cli/main,
which imports the parser, which imports the commands."""

from __future__ import annotations


class CommandError(Exception):
    """A command could not do its job for a reason the user can act on; shown as one line."""
