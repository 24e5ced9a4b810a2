"""``rasteret info <collection>``: what one collection holds."""

from __future__ import annotations

import click

from rasteret_core.cli._common import (
    collection_name, echo_json, EXIT_FAILED, fail, json_option, reported, workspace_option,
)


@click.command("info")
@click.argument("collection")
@workspace_option
@json_option
def command(collection: str, workspace: str | None, as_json: bool) -> None:
    """Describe COLLECTION: source, root, bands, and the scenes stored per date."""
    from rasteret_core.workspace import load_collection

    with reported():
        coll = load_collection(collection_name(collection, workspace), workspace)
        info = coll.describe()
        table = coll.read_table()
        per_date: dict[str, int] = {}
        for day in table.column("date").to_pylist():
            per_date[str(day)] = per_date.get(str(day), 0) + 1
        info["scenes_per_date"] = per_date
    if info is None:  # pragma: no cover - reported() exits on errors
        fail("no collection", EXIT_FAILED)
    if as_json:
        echo_json(info)
        return
    dates = info["date_range"]
    click.echo(f"name:        {info['name']}")
    click.echo(f"data source: {info['data_source'] or '-'}")
    click.echo(f"root:        {info['root']}")
    click.echo(f"bands:       {', '.join(info['bands'])}")
    click.echo(f"dates:       {dates[0]}..{dates[1]} ({len(per_date)} dates)" if dates else "dates:       none")
    click.echo(f"scenes:      {info['size']}")
    for day, n in per_date.items():
        click.echo(f"  {day}  {n}")
