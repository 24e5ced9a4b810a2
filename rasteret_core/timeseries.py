"""The NDVI time series table: per-AOI, per-date statistics, one small GeoParquet file per
(date, AOI) so partitions are written independently and atomically, and the folder reads as
one table (``geopandas.read_parquet(folder)`` / ``pyarrow.dataset``)."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import shapely
from shapely.geometry.base import BaseGeometry

from rasteret_core.names import check_under, safe_name
from rasteret_core.storage import atomic_write, resolve_root

STATS_SCHEMA = pa.schema([
    ("aoi", pa.string()),
    ("date", pa.dictionary(pa.int32(), pa.string())),  # as the hive partition date=... reads, so both agree
    ("scene_id", pa.string()),
    ("mean", pa.float64()),
    ("median", pa.float64()),
    ("valid_pixels", pa.int64()),
    ("aoi_pixels", pa.int64()),
    ("valid_fraction", pa.float64()),
    ("ndvi_path", pa.string()),
    ("geometry", pa.binary()),
])


def ndvi_statistics(data: np.ndarray, inside: np.ndarray) -> dict[str, Any]:
    """Mean, median and valid fraction of NDVI pixels inside the AOI (NaN = masked)."""
    values = data[inside]
    valid = values[np.isfinite(values)]
    return {
        "mean": float(valid.mean()) if valid.size else None,
        "median": float(np.median(valid)) if valid.size else None,
        "valid_pixels": int(valid.size),
        "aoi_pixels": int(values.size),
        "valid_fraction": float(valid.size / values.size) if values.size else 0.0,
    }


def write_stats(rows: list[dict[str, Any]], root: str, *, date: str, aoi: str, geometry: BaseGeometry,
                storage_options: dict[str, Any] | None = None) -> str:
    """Replace the statistics of one (date, AOI) atomically; an empty ``rows`` writes one
    row without a scene, so a date without scenes is an explicit result."""
    if not rows:
        rows = [{"scene_id": None, "mean": None, "median": None, "valid_pixels": 0, "aoi_pixels": 0,
                 "valid_fraction": 0.0, "ndvi_path": None}]
    wkb = shapely.to_wkb(geometry)
    table = pa.Table.from_pylist(
        [{**r, "aoi": aoi, "date": date, "geometry": wkb} for r in rows], schema=STATS_SCHEMA
    ).replace_schema_metadata({b"geo": _geo_metadata(geometry)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _, fs, path = resolve_root(root, storage_options)
    relative = f"date={safe_name(date)}/aoi={safe_name(aoi)}.parquet"  # the values are stored in the rows
    check_under(path, f"{path}/{relative}")
    fs.create_dir(f"{path}/date={safe_name(date)}", recursive=True)
    atomic_write(fs, f"{path}/{relative}", buf.getvalue())
    return f"{root.rstrip('/')}/{relative}"


def read_stats(root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None):
    """The whole time series as a GeoDataFrame (EPSG:4326 AOI geometries)."""
    import geopandas as gpd
    import pyarrow.dataset as ds

    _, fs, path = resolve_root(os.fspath(root), storage_options)
    files = [f.path for f in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
             if f.path.endswith(".parquet") and not f.base_name.startswith(".")]
    if not files:
        return gpd.GeoDataFrame({name: [] for name in STATS_SCHEMA.names if name != "geometry"},
                                geometry=gpd.GeoSeries([], crs=4326))
    table = ds.dataset(files, schema=STATS_SCHEMA, filesystem=fs, format="parquet").to_table()
    frame = table.to_pandas()
    frame["date"] = frame["date"].astype(str)  # stored as a dictionary, as the hive partition reads
    frame["geometry"] = shapely.from_wkb(frame["geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326).sort_values(["date", "aoi"]).reset_index(drop=True)


def _geo_metadata(geometry: BaseGeometry) -> bytes:
    import json

    return json.dumps({
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": [geometry.geom_type],
                                 "bbox": list(geometry.bounds)}},
    }).encode()
