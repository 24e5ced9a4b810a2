"""``rasteret export``: a collection as other tools read it (virtual Zarr, stac-geoparquet)."""

from __future__ import annotations

import click

from rasteret_core.cli._common import (
    band_codes, check_date, collection_name, echo_json, endpoint_option, json_option, known_codes, reported,
    workspace_option,
)


@click.command("export")
@click.argument("collection")
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["zarr", "stac-geoparquet"]), default="zarr", show_default=True,
              help="zarr: an Icechunk repository whose chunks reference the COGs' tiles; stac-geoparquet: the items.")
@click.option("--bands", "-b", default=None, help="Comma-separated band codes  [default: every stored band]")
@click.option("--start", default=None, help="First date (YYYY-MM-DD)  [default: every stored date]", callback=check_date)
@click.option("--end", default=None, help="Last date (YYYY-MM-DD), inclusive.", callback=check_date)
@workspace_option
@endpoint_option
@json_option
def command(collection: str, path: str, fmt: str, bands, start, end, workspace, endpoint_url, as_json: bool) -> None:
    """Export COLLECTION to PATH, reading no COG (the stored headers say it all).

    Example: rasteret export bangalore_202401-03_sentinel bangalore.icechunk -b B04,B08
    """
    from rasteret_core.collection.tables import to_stac_geoparquet
    from rasteret_core.collection.virtual_zarr import to_virtual_zarr
    from rasteret_core.workspace import load_collection

    if (start is None) != (end is None):
        raise click.UsageError("give both --start and --end, or neither")
    dates = (start, end) if start else None
    with reported():
        coll = load_collection(collection_name(collection, workspace), workspace)
        if fmt == "stac-geoparquet":
            written = {"path": to_stac_geoparquet(coll, path, date_range=dates)}
        else:
            report = to_virtual_zarr(coll, path, bands=known_codes(band_codes(bands), coll.bands), date_range=dates,
                                     endpoint_url=endpoint_url)
            written = {"path": report.path, "groups": report.groups, "chunks": report.chunks,
                       "skipped": [list(s) for s in report.skipped]}
    if as_json:
        echo_json(written)
    else:
        click.echo(written["path"])
        if "groups" in written:
            click.echo(f"{len(written['groups'])} bands as Zarr groups, {written['chunks']} tile references,"
                       f" {len(written['skipped'])} skipped", err=True)
            for scene, band, reason in written["skipped"][:10]:
                click.echo(f"rasteret: warning: {scene} {band} skipped: {reason}", err=True)
