"""``rasteret read``: the tiles under AOIs, as one GeoTIFF per geometry, band and date."""

from __future__ import annotations

import click

from rasteret_core.cli._common import (
    check_date, collection_name, known_codes, read_geometries,
    band_codes, echo_json, endpoint_option, fail, json_option, reader_options, reported, retries_option,
    workspace_option,
)


@click.command("read")
@click.argument("collection")
@click.option("--aois", "aoi_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoJSON/GeoParquet of polygons, named by their 'name' (or 'id') property.")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N", help="One box instead of --aois.")
@click.option("--bands", "-b", required=True, help="Comma-separated band codes, e.g. B04,B08.")
@click.option("--start", default=None, help="First date (YYYY-MM-DD)  [default: every stored date]", callback=check_date)
@click.option("--end", default=None, help="Last date (YYYY-MM-DD), inclusive.", callback=check_date)
@click.option("--cloud-cover-lt", type=click.FloatRange(0, 100), default=None, help="Keep scenes below this cloud cover (%).")
@click.option("--crs", default=None, help="CRS of the --bbox / AOI coordinates  [default: EPSG:4326]")
@click.option("--reflectance", is_flag=True, help="Write float32 reflectance (each scene's stored radiometry rule) "
                                                 "instead of the stored values with their scale and offset.")
@click.option("--mask-clouds", is_flag=True, help="Mask cloudy pixels (needs SCL or QA_PIXEL in --bands); another "
                                                  "scene of the day fills them.")
@click.option("--output", "-o", type=click.Path(file_okay=False), required=True, help="Folder for the GeoTIFFs.")
@workspace_option
@endpoint_option
@retries_option
@json_option
def command(collection: str, aoi_file, bbox, bands: str, start, end, cloud_cover_lt, crs, reflectance: bool,
            mask_clouds: bool, output: str, workspace, endpoint_url, retries, as_json: bool) -> None:
    """Read COLLECTION under the AOIs and write <band>_<aoi>_<YYYYMMDD>.tif files to --output.

    Example: rasteret read bangalore_202401-03_sentinel --aois farms.geojson -b B04,B08 -o out/
    """
    import shapely

    from rasteret_core.api import Rasteret
    from rasteret_core.products.outputs import save_per_geometry

    if (aoi_file is None) == (bbox is None):
        raise click.UsageError("give exactly one of --aois or --bbox")
    if (start is None) != (end is None):
        raise click.UsageError("give both --start and --end, or neither")
    with reported():
        geometries = read_geometries(aoi_file) if aoi_file is not None else {"bbox": shapely.box(*bbox)}
        r = Rasteret.load_collection(collection_name(collection, workspace), workspace)
        r.reader_options = reader_options(endpoint_url, retries)
        r.progress = False
        codes = known_codes(band_codes(bands), r.collection.bands)
        datasets = r.get_xarray(geometries, codes, cloud_cover_lt, (start, end) if start else None,
                                per_geometry=True, crs=crs, reflectance=reflectance, mask_clouds=mask_clouds)
        paths = [p for band in codes if any(band in ds.data_vars for ds in datasets.values())
                 for p in save_per_geometry({k: ds[[band]] for k, ds in datasets.items() if band in ds.data_vars},
                                            output, file_prefix=f"{band}_", data_var=band)]
    diagnosis = r.last_read
    if as_json:
        echo_json({"files": paths, **diagnosis.as_dict()})
    else:
        for path in paths:
            click.echo(path)
        click.echo(f"{len(paths)} files; {diagnosis.reason}; {r.last_stats.requests} requests,"
                   f" {r.last_stats.bytes_fetched} bytes, {r.last_stats.header_requests} header requests", err=True)
    if not paths:
        fail(f"nothing written: {diagnosis.reason}", 3)
