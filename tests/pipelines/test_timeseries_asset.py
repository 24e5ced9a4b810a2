"""The product on the asset pages: ``ndvi_timeseries`` keeps the table and one chart per AOI (a
small one shown in place, the full one a click away), ``ndvi`` one readable preview per
partition, and ``ndvi_stats`` labels its NDVI values per AOI so the Plots tab never draws a
line from one field to another."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from rasteret_core.products.ndvi_preview import MIN_LONG_SIDE
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.markdown import INLINE_LIMIT
from rasteret_pipelines.defs.partitions import AOIS, partition_key

COLLECTION = [defs.get_assets_def("scene_collection")]
NDVI = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
TIMESERIES = [defs.get_assets_def("ndvi_timeseries")]
DAYS = ["2024-01-05", "2024-01-10"]


def png_of(markdown: str) -> Image.Image:
    data = re.search(r"\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown).group(1)
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_the_demo_pipeline_shows_each_fields_time_series_and_previews(pipeline, instance):
    aois = sorted(instance.get_dynamic_partitions(AOIS.name))
    ndvi_meta, stats_meta = {}, {}
    for day in DAYS:  # as the demo runs it: the collection, then one run for every AOI of the date
        dg.materialize(COLLECTION, partition_key=day, resources=pipeline, instance=instance)
        tags = {"dagster/asset_partition_range_start": partition_key(day, aois[0]),
                "dagster/asset_partition_range_end": partition_key(day, aois[-1])}
        result = dg.materialize(NDVI, resources=pipeline, instance=instance, tags=tags)
        ndvi_meta |= {e.partition: e.metadata for e in result.asset_materializations_for_node("ndvi")}
        stats_meta |= {e.partition: e.metadata for e in result.asset_materializations_for_node("ndvi_stats")}
    result = dg.materialize(TIMESERIES, resources=pipeline, instance=instance)
    meta = result.asset_materializations_for_node("ndvi_timeseries")[0].metadata

    # the statistics files, read with pyarrow alone
    root = Path(pipeline["storage"].stats_root)
    stored = pd.DataFrame([r for p in sorted(root.rglob("*.parquet")) for r in pq.read_table(p).to_pylist()])
    stored["date"] = stored["date"].astype(str)
    assert len(stored) == len(DAYS) * len(aois)

    # the table it keeps: one row per AOI and date, real dates, the stored values
    folder = Path(pipeline["storage"].path("ndvi_timeseries"))
    table = pd.read_parquet(folder / "timeseries.parquet")
    assert pd.api.types.is_datetime64_dtype(table["date"]) and meta["dagster/row_count"].value == len(stored)
    merged = table.assign(date=table["date"].dt.strftime("%Y-%m-%d")).merge(stored, on=["aoi", "date"],
                                                                             suffixes=("", "_file"))
    assert len(merged) == len(stored)
    for name in ("median", "p10", "p90", "valid_fraction", "coverage"):
        np.testing.assert_allclose(merged[name], merged[f"{name}_file"].astype(float), equal_nan=True)
    assert (folder / "timeseries.csv").read_text().startswith("aoi,date,mean,median,p10,p90,valid_fraction")

    summary = {r.data["aoi"]: r.data for r in meta["summary"].value.records}
    assert sorted(summary) == aois
    for aoi in aois:
        inline = meta[f"NDVI {aoi}"].value
        assert len(inline) <= INLINE_LIMIT  # the UI shows it in place, no "[Show Markdown]"
        assert png_of(inline).size[0] >= 160 and f"{aoi}: median NDVI" in inline
        chart = png_of(meta[f"chart {aoi}"].value)
        assert chart.size[0] >= 600
        assert (folder / "charts" / f"{aoi}.png").read_bytes().startswith(b"\x89PNG")
        last = stored[stored.aoi == aoi].sort_values("date").iloc[-1]
        assert summary[aoi]["dates"] == len(DAYS) and summary[aoi]["latest"] == last["date"]
        assert summary[aoi]["latest_median"] == round(last["median"], 4)

    for day in DAYS:
        for aoi in aois:
            key = partition_key(day, aoi)
            preview = png_of(ndvi_meta[key]["preview"].value)  # each partition its own map
            assert max(preview.size) >= MIN_LONG_SIDE
            row = stored[(stored.aoi == aoi) & (stored.date == day)].iloc[0]
            assert stats_meta[key][f"median NDVI {aoi}"].value == row["median"]
            assert not [k for k in stats_meta[key] if k.startswith("median NDVI ") and k != f"median NDVI {aoi}"]
            assert "mean_ndvi" not in stats_meta[key]  # the label the Plots tab joined across AOIs


def test_before_any_statistics_the_time_series_is_an_empty_table_not_a_failure(pipeline, instance):
    result = dg.materialize(TIMESERIES, resources=pipeline, instance=instance)
    meta = result.asset_materializations_for_node("ndvi_timeseries")[0].metadata
    assert meta["dagster/row_count"].value == 0 and meta["aois"].value == 0 and not meta["summary"].value.records
    table = pd.read_parquet(Path(pipeline["storage"].path("ndvi_timeseries")) / "timeseries.parquet")
    assert table.empty and pd.api.types.is_datetime64_dtype(table["date"])
