"""``rasteret collections``: the collections of a workspace."""

from __future__ import annotations

import click

from rasteret_core.cli._common import echo_json, json_option, reported, workspace_option


@click.command("collections")
@workspace_option
@json_option
def command(workspace: str | None, as_json: bool) -> None:
    """List the collections of the workspace: name, source, dates, scenes, bands."""
    from rasteret_core.workspace import list_collections, resolve_workspace

    with reported():
        found = list_collections(workspace)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no collections in {resolve_workspace(workspace)}", err=True)
        return
    width = max(len(c["name"]) for c in found)
    for c in found:
        start, end = c["date_range"]
        click.echo(f"{c['name']:<{width}}  {c['data_source'] or '-'}  {start}..{end}  {c['size']} scenes"
                   f"  {','.join(c['bands'])}")
