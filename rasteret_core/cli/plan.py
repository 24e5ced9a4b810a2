"""``rasteret plan``: what a read will request and cost, before reading (nothing is fetched)."""

from __future__ import annotations

import click

from rasteret_core.cli._common import (
    band_codes, check_date, collection_name, echo_json, EXIT_EMPTY, fail, json_option, known_codes, read_geometries,
    reported, workspace_option,
)


@click.command("plan")
@click.argument("collection")
@click.option("--aois", "aoi_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoJSON/GeoParquet of polygons (plans get_xarray) or points (plans sample_points).")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N", help="One box instead of --aois.")
@click.option("--point", "points", nargs=2, type=float, multiple=True, metavar="LON LAT",
              help="A point to sample (repeatable): plans sample_points.")
@click.option("--bands", "-b", required=True, help="Comma-separated band codes, e.g. B04,B08.")
@click.option("--start", default=None, help="First date (YYYY-MM-DD)  [default: every stored date]", callback=check_date)
@click.option("--end", default=None, help="Last date (YYYY-MM-DD), inclusive.", callback=check_date)
@click.option("--cloud-cover-lt", type=click.FloatRange(0, 100), default=None, help="Keep scenes below this cloud cover (%).")
@click.option("--max-distance", type=click.FloatRange(min=0), default=None,
              help="Points: nearest valid pixel within this distance (image CRS units).")
@click.option("--neighbourhood", type=click.IntRange(min=1), default=1, help="Points: k x k block (odd k).")
@click.option("--reader-region", default=None,
              help="AWS region the read runs in (same as the bucket: no transfer charge)  [default: outside AWS]")
@click.option("--get-price", type=click.FloatRange(min=0), default=None, help="USD per 1,000 GET requests.")
@click.option("--transfer-price", type=click.FloatRange(min=0), default=None,
              help="USD per GB transferred to the internet.")
@click.option("--inter-region-price", type=click.FloatRange(min=0), default=None,
              help="USD per GB transferred to another AWS region.")
@workspace_option
@json_option
def command(collection: str, aoi_file, bbox, points, bands: str, start, end, cloud_cover_lt, max_distance,
            neighbourhood: int, reader_region, get_price, transfer_price, inter_region_price, workspace,
            as_json: bool) -> None:
    """Plan a read of COLLECTION: scenes, tiles, requests after coalescing, bytes and, on
    requester-pays buckets, the price (AWS list prices unless given). Fetches nothing.

    Example: rasteret plan landsat_202401-03_landsat --aois farms.geojson -b red,nir08
    """
    from dataclasses import replace

    import shapely

    from rasteret_core.api import Rasteret
    from rasteret_core.plan import Prices

    if sum(x is not None and x != () for x in (aoi_file, bbox, points or None)) != 1:
        raise click.UsageError("give exactly one of --aois, --bbox or --point")
    if (start is None) != (end is None):
        raise click.UsageError("give both --start and --end, or neither")
    prices = Prices()
    given = {"get_per_1000": get_price, "transfer_internet_per_gb": transfer_price,
             "transfer_inter_region_per_gb": inter_region_price}
    if any(v is not None for v in given.values()):
        prices = replace(prices, as_of="given", **{k: v for k, v in given.items() if v is not None})
    dates = (start, end) if start else None
    with reported():
        r = Rasteret.load_collection(collection_name(collection, workspace), workspace)
        r.progress = False
        codes = known_codes(band_codes(bands), r.collection.bands)
        geometries = None
        if aoi_file is not None:
            frame = read_geometries(aoi_file)
            if len(frame) and set(frame.geometry.geom_type) == {"Point"}:
                points = frame
            else:
                geometries = frame
        elif bbox is not None:
            geometries = {"bbox": shapely.box(*bbox)}
        if geometries is not None:
            plan = r.plan("get_xarray", geometries, codes, cloud_cover_lt, dates, reader_region=reader_region,
                          prices=prices)
        else:
            pts = points if not isinstance(points, tuple) else {str(i): p for i, p in enumerate(points, start=1)}
            plan = r.plan("sample_points", pts, codes, dates, cloud_cover_lt, max_distance=max_distance,
                          neighbourhood=neighbourhood, reader_region=reader_region, prices=prices)
    if as_json:
        echo_json(plan.as_dict())
    else:
        click.echo(plan.summary())
    if plan.windows == 0:
        fail("nothing to read: no stored scene covers the area for these dates and filters", EXIT_EMPTY)
