"""``ndvi_timeseries``: the NDVI time series of every AOI, as a table and one chart per AOI.

Not partitioned: each materialisation reads the whole statistics table (``ndvi_stats``), so
it is the product a field scientist looks at, shown on the asset page. What the UI shows in
place (Dagster 1.13 renders a Markdown value inline only under 1000 characters, and has no
image metadata type): a summary table (one row per AOI) and, per AOI, a small chart of a few
hundred bytes with a one-line summary. The full chart of each AOI (axes, dates, legend) is one
click away ("[Show Markdown]") and stored as a PNG beside the table (Parquet and CSV).
"""

import io
from typing import Any

import dagster as dg

from rasteret_core.products.timeseries import ndvi_timeseries as timeseries_table
from rasteret_core.products.timeseries_chart import plot_timeseries, png_bytes
from rasteret_core.storage import atomic_write, resolve_root
from rasteret_pipelines.defs.markdown import png_markdown, sparkline_markdown
from rasteret_pipelines.defs.resources import Aois, StacSource, Storage

MAX_CHARTS_IN_METADATA = 24
"""Full charts put into the metadata (each some 10-20 KB of the event log); all are stored as files."""
MAX_SPARKLINES = 100

# after any ndvi_stats partition is updated (or when missing), once no upstream run is in progress
TIMESERIES_AUTOMATION = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


@dg.asset(
    deps=["ndvi_stats"],
    automation_condition=TIMESERIES_AUTOMATION,
    kinds={"parquet", "csv", "png"},
    group_name="ndvi",
    description="The NDVI time series per AOI: a tidy table (aoi, date, mean, median, p10, p90, valid_fraction,"
    " coverage, scenes) and one chart per AOI (median line, p10-p90 band, markers sized by the clear share of"
    " the AOI, gaps where no pixel was valid), from the whole ndvi_stats table. The charts show on this page.",
)
def ndvi_timeseries(context: dg.AssetExecutionContext, storage: Storage, aois: Aois,
                    stac: StacSource) -> dg.MaterializeResult:
    current = set(aois.load())
    table = timeseries_table(storage.stats_root, storage.storage_options())
    removed = sorted(set(table["aoi"]) - current)  # their statistics stay stored; the page shows current fields
    table = table[table["aoi"].isin(current)].reset_index(drop=True)
    names = sorted(set(table["aoi"]))
    options = storage.storage_options()
    folder = storage.path("ndvi_timeseries")
    written = [_write(storage.path("ndvi_timeseries", "timeseries.parquet"), _parquet(table), options),
               _write(storage.path("ndvi_timeseries", "timeseries.csv"), _csv(table), options)]
    charts: dict[str, bytes] = {}
    for name in names:
        charts[name] = png_bytes(plot_timeseries(table, name, label=stac.index_name()), colours=64)
        written.append(_write(storage.path("ndvi_timeseries", "charts", f"{name}.png"), charts[name], options))

    metadata: dict[str, Any] = {
        "dagster/row_count": len(table),
        "aois": len(names),
        "dates": int(table["date"].nunique()),
        "summary": dg.MetadataValue.table(_summary_records(table, names), schema=SUMMARY_SCHEMA),
    }
    for name in names[:MAX_SPARKLINES]:  # in place on the asset page
        metadata[f"{stac.index_name()} {name}"] = dg.MetadataValue.md(sparkline_markdown(table, name, _summary_text(table, name)))
    for name in names[:MAX_CHARTS_IN_METADATA]:  # one click: the full chart
        metadata[f"chart {name}"] = dg.MetadataValue.md(png_markdown(charts[name], f"NDVI time series {name}"))
    metadata["folder"] = dg.MetadataValue.path(folder)
    metadata["files"] = dg.MetadataValue.json(written[:2] + ([f"{len(charts)} chart(s) under {folder}/charts"]))
    if len(names) > MAX_CHARTS_IN_METADATA:
        metadata["note"] = (f"{len(names)} AOIs: the first {MAX_CHARTS_IN_METADATA} charts are shown here,"
                            f" all are in {folder}/charts")
    if removed:
        metadata["aois_not_in_source"] = dg.MetadataValue.json(removed[:50])
    context.log.info("time series of %d AOIs over %d dates (%d rows)", len(names), metadata["dates"], len(table))
    return dg.MaterializeResult(metadata=metadata)


SUMMARY_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("aoi", "string"),
    dg.TableColumn("dates", "int", description="dates with a statistics row"),
    dg.TableColumn("valid_dates", "int", description="dates with at least one valid pixel"),
    dg.TableColumn("latest", "string", description="the latest date with a valid pixel"),
    dg.TableColumn("latest_median", "float"),
    dg.TableColumn("latest_valid_fraction", "float"),
    dg.TableColumn("median_min", "float"),
    dg.TableColumn("median_max", "float"),
])


def _summary_records(table: Any, names: list[str]) -> list[dg.TableRecord]:
    records = []
    for name in names:
        rows = table[table["aoi"] == name]
        valid = rows[rows["median"].notna()]
        last = valid.iloc[-1] if len(valid) else None
        records.append(dg.TableRecord({
            "aoi": name, "dates": len(rows), "valid_dates": len(valid),
            "latest": last["date"].date().isoformat() if last is not None else "-",
            "latest_median": round(float(last["median"]), 4) if last is not None else None,
            "latest_valid_fraction": round(float(last["valid_fraction"]), 3) if last is not None else None,
            "median_min": round(float(valid["median"].min()), 4) if len(valid) else None,
            "median_max": round(float(valid["median"].max()), 4) if len(valid) else None,
        }))
    return records


def _summary_text(table: Any, name: str) -> str:
    rows = table[table["aoi"] == name]
    valid = rows[rows["median"].notna()]
    gaps = len(rows) - len(valid)
    if not len(valid):
        return f"{name}: {len(rows)} date(s), none with valid pixels"
    last = valid.iloc[-1]
    return (f"{name}: median NDVI {valid['median'].min():.2f} to {valid['median'].max():.2f} over {len(rows)} date(s)"
            f" ({gaps} without valid pixels); latest {last['median']:.2f} on {last['date'].date().isoformat()}"
            f" ({last['valid_fraction']:.0%} clear). Axis -0.2 to 1.")


def _parquet(table: Any) -> bytes:
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def _csv(table: Any) -> bytes:
    return table.to_csv(index=False, date_format="%Y-%m-%d").encode()


def _write(path: str, data: bytes, storage_options: dict[str, Any] | None) -> str:
    """Replace the file at ``path`` (local or ``s3://``) atomically."""
    _, fs, inner = resolve_root(path, storage_options)
    fs.create_dir(inner.rpartition("/")[0], recursive=True)
    atomic_write(fs, inner, data)
    return path
