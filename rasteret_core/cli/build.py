"""``rasteret build``: STAC search + every COG header once, stored as a collection."""

from __future__ import annotations

import click

from rasteret_core.cli._common import (
    check_date,
    EXIT_EMPTY,
    band_codes,
    data_source,
    echo_json,
    endpoint_option,
    json_option,
    reader_options,
    reported,
    retries_option,
    workspace_option,
)


@click.command("build")
@click.argument("name")
@click.option("--source", "-s", "source_text", default="sentinel-2", show_default=True,
              help="A registered data source (sentinel-2, landsat, ...) or a local items file (GeoJSON, "
                   "NDJSON, stac-geoparquet).")
@click.option("--like", default="sentinel-2", show_default=True,
              help="For an items file: the registered source whose band codes its assets use.")
@click.option("--start", required=True, help="First date (YYYY-MM-DD).", callback=check_date)
@click.option("--end", required=True, help="Last date (YYYY-MM-DD), inclusive.", callback=check_date)
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N",
              help="Search box in longitude/latitude.")
@click.option("--cloud-cover-lt", type=click.FloatRange(0, 100), default=None, help="Keep items below this cloud cover (%).")
@click.option("--bands", "-b", default=None, help="Comma-separated band codes  [default: all of the source's]")
@click.option("--max-items", type=click.IntRange(min=1), default=None, help="Stop the search after this many items.")
@click.option("--overwrite", is_flag=True, help="Replace an existing collection of this name.")
@click.option("--refresh", is_flag=True, help="Keep an existing collection and merge what this search reads into it "
                                                "(bands and items not re-read are kept).")
@click.option("--prune", is_flag=True, help="With --refresh: remove items of the searched dates the search no "
                                              "longer returns (they are listed).")
@workspace_option
@endpoint_option
@retries_option
@json_option
def command(name: str, source_text: str, like: str, start: str, end: str, bbox, cloud_cover_lt, bands,
            max_items, overwrite: bool, refresh: bool, prune: bool, workspace, endpoint_url, retries, as_json: bool) -> None:
    """Build the collection NAME (stored as NAME_<YYYYMM-MM>_<source>) from a STAC search.

    Example: rasteret build bangalore --start 2024-01-01 --end 2024-03-31
    --bbox 77.5 12.9 77.7 13.1 --cloud-cover-lt 30 --bands B04,B08,SCL
    """
    from rasteret_core.api import Rasteret

    with reported():
        source = data_source(source_text, like)
        r = Rasteret(name, source, (start, end), workspace, reader_options=reader_options(endpoint_url, retries),
                     progress=False)
        report = r.create_collection(bbox=tuple(bbox) if bbox else None, cloud_cover_lt=cloud_cover_lt,
                                     bands=band_codes(bands), max_items=max_items, overwrite=overwrite, refresh=refresh,
                                     prune=prune)
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(f"{r.name}: {report.message}")
        for cause in report.first_causes():
            click.echo(f"  failed headers: {cause}", err=True)
        for warning in report.warnings[:5]:
            click.echo(f"  warning: {warning}", err=True)
    if report.empty:
        raise SystemExit(EXIT_EMPTY)
