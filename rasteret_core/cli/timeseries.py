"""``rasteret timeseries``: the NDVI time series per AOI of a statistics folder, as a table and charts."""

from __future__ import annotations

import click

from rasteret_core.cli._common import echo_json, endpoint_option, EXIT_EMPTY, fail, json_option, reported


@click.command("timeseries")
@click.argument("stats_folder")
@click.option("--aoi", "aois", multiple=True, help="Only this AOI (repeat for several)  [default: every AOI]")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the chart (one panel per AOI) here: .png, .svg or .pdf.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Write the table as CSV here.")
@click.option("--min-valid", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Draw dates whose valid (clear) fraction of the AOI is below this as gaps.")
@endpoint_option
@json_option
def command(stats_folder: str, aois: tuple[str, ...], out, csv_path, min_valid: float, endpoint_url,
            as_json: bool) -> None:
    """The NDVI time series of STATS_FOLDER (what the ndvi_stats asset writes, local or s3://):
    one row per AOI and date (median, p10, p90, valid fraction, coverage, scenes), printed,
    and with --out a chart per AOI (median line, p10-p90 band, markers sized by the clear
    fraction, gaps on dates without valid pixels).

    Example: rasteret timeseries .rasteret_demo/storage/ndvi_stats --out ndvi.png --csv ndvi.csv
    """
    from rasteret_core.products.timeseries import ndvi_timeseries

    options = {"endpoint_url": endpoint_url} if endpoint_url and stats_folder.startswith("s3://") else None
    with reported():
        table = ndvi_timeseries(stats_folder, options, aois=aois or None)
        missing = sorted(set(aois) - set(table["aoi"]))
        if missing:
            fail(f"no statistics for AOI(s) {', '.join(missing)} in {stats_folder}")
        if table.empty:
            fail(f"no statistics in {stats_folder}: run the ndvi_stats asset (or the demo) first", EXIT_EMPTY)
        if csv_path:
            table.to_csv(csv_path, index=False, date_format="%Y-%m-%d")
        if out:
            from rasteret_core.products.timeseries_chart import plot_timeseries, save

            save(plot_timeseries(table, min_valid_fraction=min_valid), out)
    if as_json:
        plain = table.assign(date=table["date"].dt.strftime("%Y-%m-%d")).astype(object)
        records = plain.where(plain.notna(), None).to_dict(orient="records")  # NaN is not JSON: null
        echo_json({"rows": records, "chart": out, "csv": csv_path})
        return
    shown = table.drop(columns=["scene_ids"]).assign(date=table["date"].dt.strftime("%Y-%m-%d"))
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    written = [p for p in (out, csv_path) if p]
    click.echo(f"{len(table)} rows, {table['aoi'].nunique()} AOI(s)" + (f"; wrote {', '.join(written)}" if written else ""),
               err=True)
