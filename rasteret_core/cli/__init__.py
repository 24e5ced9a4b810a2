"""The ``rasteret`` command line, in the conventions of ``rio`` and ``stac-client``.

Every subcommand lives in its own module of this package and is listed once in
:data:`COMMANDS` (module name -> the ``click`` command it defines, called ``command``):
adding one is a new module plus one line here. Exit codes, the same for every command:

| code | meaning |
| --- | --- |
| 0 | done (warnings, e.g. some reads failed, go to stderr) |
| 1 | failed: every read or header failed, a collection exists, bad input values |
| 2 | usage error (unknown option, missing argument) |
| 3 | nothing found: an empty search or a read with nothing to read (stderr says why) |
"""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "collections": "rasteret_core.cli.collections",
    "info": "rasteret_core.cli.info",
    "build": "rasteret_core.cli.build",
    "read": "rasteret_core.cli.read",
    "plan": "rasteret_core.cli.plan",
    "timeseries": "rasteret_core.cli.timeseries",
    "export": "rasteret_core.cli.export",
    "index": "rasteret_core.cli.index",
}
"""Subcommand name -> module defining ``command`` (imported only when that command runs)."""


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on use, so ``rasteret --help`` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name]).command


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rasteret")
    except PackageNotFoundError:
        return "unknown"


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=_version(), prog_name="rasteret")
def main() -> None:
    """Fast, cheap Cloud-Optimized GeoTIFF time series: build a collection once (STAC search +
    every COG header), then read only the tiles your areas of interest need.

    Exit codes: 0 done, 1 failed, 2 usage error, 3 nothing found.
    """
