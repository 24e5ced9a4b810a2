"""``rasteret index``: a spectral index by name per AOI and date, as COGs, a table and a chart."""

from __future__ import annotations

import os

import click

from rasteret_core.cli._common import (
    check_date, collection_name, echo_json, endpoint_option, EXIT_EMPTY, fail, json_option, read_geometries,
    reader_options, reported, retries_option, workspace_option,
)


def _constants(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise click.BadParameter(f"{text!r} is not NAME=NUMBER (e.g. L=0.5)", param_hint="--constant")
    return out


@click.command("index")
@click.argument("index_name", metavar="INDEX")
@click.argument("collection")
@click.option("--aois", "aoi_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoJSON/GeoParquet of polygons, named by their 'name' (or 'id') property.")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N", help="One box instead of --aois.")
@click.option("--start", default=None, help="First date (YYYY-MM-DD)  [default: every stored date]", callback=check_date)
@click.option("--end", default=None, help="Last date (YYYY-MM-DD), inclusive.", callback=check_date)
@click.option("--cloud-cover-lt", type=click.FloatRange(0, 100), default=None, help="Keep scenes below this cloud cover (%).")
@click.option("--constant", "constants", multiple=True, callback=_constants, metavar="NAME=VALUE",
              help="Override a catalogue constant, e.g. --constant L=0.5 (repeatable).")
@click.option("--no-cloud-mask", is_flag=True, help="Keep cloudy pixels (default: SCL / QA_PIXEL mask them when stored).")
@click.option("--output", "-o", type=click.Path(file_okay=False), required=True,
              help="Folder for <INDEX>_<aoi>_<YYYYMMDD>.tif, <INDEX>_timeseries.csv and <INDEX>_timeseries.png.")
@click.option("--no-cogs", is_flag=True, help="Write only the table and the chart.")
@workspace_option
@endpoint_option
@retries_option
@json_option
def command(index_name: str, collection: str, aoi_file, bbox, start, end, cloud_cover_lt, constants, no_cloud_mask: bool,
            output: str, no_cogs: bool, workspace, endpoint_url, retries, as_json: bool) -> None:
    """INDEX (EVI, NDWI, SAVI, NBR, NDMI, ... from the Awesome Spectral Indices catalogue) of
    COLLECTION per AOI and date: one float32 COG per AOI and date, the time-series table
    (median, p10, p90, valid fraction, coverage per AOI and date) and a chart per AOI.

    Example: rasteret index EVI bangalore_202401-03_sentinel --aois farms.geojson -o evi/
    """
    import shapely

    from rasteret_core.api import Rasteret
    from rasteret_core.names import safe_name
    from rasteret_core.products.indices import index_table, spectral_index
    from rasteret_core.products.outputs import write_cog
    from rasteret_core.products.timeseries_chart import plot_timeseries, save

    if (aoi_file is None) == (bbox is None):
        raise click.UsageError("give exactly one of --aois or --bbox")
    if (start is None) != (end is None):
        raise click.UsageError("give both --start and --end, or neither")
    with reported():
        spec = spectral_index(index_name)
        geometries = read_geometries(aoi_file) if aoi_file is not None else {"bbox": shapely.box(*bbox)}
        r = Rasteret.load_collection(collection_name(collection, workspace), workspace)
        r.reader_options = reader_options(endpoint_url, retries)
        r.progress = False
        result = r.get_index(geometries, spec.name, cloud_cover_lt, (start, end) if start else None,
                             mask_clouds=not no_cloud_mask, constants=constants or None)
        table = index_table(result)
        if table.empty:
            fail(f"no scene of {r.collection.name} covers the AOIs"
                 + (f" between {start} and {end}" if start else ""), EXIT_EMPTY)
        os.makedirs(output, exist_ok=True)
        cogs = []
        tags = {**{k.upper(): v for k, v in spec.tags(constants).items()}, "SOURCE": r.collection.name}
        if not no_cogs:
            for raster in result.rasters:
                day = raster.datetime.strftime("%Y%m%d")
                path = os.path.join(output, f"{safe_name(spec.name)}_{safe_name(raster.geometry_id)}_{day}.tif")
                cogs.append(write_cog(raster.data, path, transform=raster.transform, crs_epsg=raster.crs_epsg,
                                      crs_wkt=raster.crs_wkt, nodata=float("nan"), descriptions=[spec.name],
                                      tags={**tags, "DATE": raster.datetime.strftime("%Y-%m-%d"),
                                            "AOI": raster.geometry_id, "SCENES": ",".join(raster.scene_ids)}))
        csv_path = os.path.join(output, f"{safe_name(spec.name)}_timeseries.csv")
        table.to_csv(csv_path, index=False, date_format="%Y-%m-%d")
        chart = save(plot_timeseries(table, label=spec.name),
                     os.path.join(output, f"{safe_name(spec.name)}_timeseries.png"))
    stats = r.last_stats
    if as_json:
        echo_json({"index": spec.name, "formula": spec.formula, "cogs": cogs, "csv": csv_path, "chart": chart,
                   "rows": len(table), "failures": len(result.failures), "requests": stats.requests,
                   "header_requests": stats.header_requests})
        return
    for path in [*cogs, csv_path, chart]:
        click.echo(path)
    click.echo(f"{spec.name} = {spec.formula}: {len(table)} rows for {table['aoi'].nunique()} AOI(s);"
               f" {stats.requests} requests, {stats.header_requests} header requests", err=True)
    if result.failures:
        click.echo(f"warning: {len(result.failures)} read(s) failed; the first: {result.failures[0].error}", err=True)
