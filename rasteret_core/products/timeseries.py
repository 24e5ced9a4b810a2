"""The NDVI time series table: one row of statistics per AOI and date, one small GeoParquet file per
(date, AOI) so partitions are written independently and atomically, and the folder reads as
one table (``geopandas.read_parquet(folder)`` / ``pyarrow.dataset``).

The files store ``date`` as a dictionary-encoded string (what the ``date=...`` hive folder
reads as, so both agree); :func:`read_stats` and :func:`ndvi_timeseries` return it as a real
``datetime64`` column (midnight of the UTC date). Charts: :mod:`rasteret_core.products.timeseries_chart`.
"""

from __future__ import annotations

import io
import os
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
from affine import Affine
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import shapely
from shapely.geometry.base import BaseGeometry

from rasteret_core.names import check_under, safe_name
from rasteret_core.products.outputs import NDVI_FILE, read_ndvi_sidecar, read_output
from rasteret_core.raster.geometry import to_crs
from rasteret_core.raster.grid import aoi_geobox
from rasteret_core.raster.windows import aoi_window
from rasteret_core.storage import atomic_write, list_files, resolve_root

STATS_SCHEMA = pa.schema([
    ("aoi", pa.string()),
    ("date", pa.dictionary(pa.int32(), pa.string())),  # as the hive partition date=... reads, so both agree
    ("scene_ids", pa.list_(pa.string())),
    ("coverage", pa.float64()),
    ("valid_fraction", pa.float64()),
    ("valid_pixels", pa.int64()),
    ("aoi_pixels", pa.int64()),
    ("mean", pa.float64()),
    ("median", pa.float64()),
    ("std", pa.float64()),
    ("min", pa.float64()),
    ("max", pa.float64()),
    ("p10", pa.float64()),
    ("p90", pa.float64()),
    ("ndvi_path", pa.string()),
    ("geometry", pa.binary()),
])
"""One row per date x AOI: the day's mosaic. ``coverage``: fraction of the AOI's pixels with
data from any scene; ``valid_fraction``: fraction of the AOI's pixels with a valid NDVI
(covered, not cloud-masked); statistics over the valid pixels (``std`` is the population
standard deviation, percentiles numpy's linear interpolation)."""

_EMPTY = {"mean": None, "median": None, "std": None, "min": None, "max": None, "p10": None, "p90": None}


def ndvi_statistics(data: np.ndarray, inside: np.ndarray, covered: int | None = None,
                    aoi_pixels: int | None = None) -> dict[str, Any]:
    """Statistics of the NDVI pixels inside the AOI (NaN = not valid), as :data:`STATS_SCHEMA`.

    ``inside``: the AOI's pixels (rasterio.mask semantics) on ``data``'s grid; ``covered``:
    how many of them some scene covers (default: the valid ones); ``aoi_pixels``: the AOI's
    pixel count when the grid is cut to the scenes (default: ``inside``'s count), the
    denominator of ``valid_fraction`` and ``coverage``.
    """
    values = data[inside]
    valid = values[np.isfinite(values)].astype(np.float64)
    aoi_pixels = int(values.size) if aoi_pixels is None else max(int(aoi_pixels), int(values.size))
    covered = int(valid.size) if covered is None else int(covered)
    out: dict[str, Any] = {
        "valid_pixels": int(valid.size),
        "aoi_pixels": aoi_pixels,
        "valid_fraction": float(valid.size / aoi_pixels) if aoi_pixels else 0.0,
        "coverage": float(covered / aoi_pixels) if aoi_pixels else 0.0,
        **_EMPTY,
    }
    if valid.size:
        p10, p90 = np.percentile(valid, [10, 90])
        out.update(mean=float(valid.mean()), median=float(np.median(valid)), std=float(valid.std()),
                   min=float(valid.min()), max=float(valid.max()), p10=float(p10), p90=float(p90))
    return out


def output_statistics(folder: str, geometry: BaseGeometry, *, reader_options: dict[str, Any] | None = None,
                      storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One statistics row per NDVI COG stored in a date x AOI ``folder`` (none when it holds none).

    Each COG is read back through the core reader; its grid is the AOI's crop (cut to the
    scenes), so the AOI's pixels on it are those whose centre lies inside ``geometry``
    (``rasterio.mask`` semantics); the AOI's whole pixel count comes from the sidecar.
    ``reader_options`` are :class:`~rasteret_core.cog.ReaderOptions` fields for the outputs' location.
    """
    rows = []
    for path in list_files(folder, suffix=NDVI_FILE, storage_options=storage_options):
        header, values = read_output(path, **(reader_options or {}))
        crop = aoi_window(header, to_crs(geometry, header.crs_epsg))
        inside = ~crop.outside if crop is not None and crop.shape == values.shape else values == values
        sidecar = read_ndvi_sidecar(folder, storage_options=storage_options) or {}
        whole = aoi_geobox(geometry, header.crs_epsg or header.crs_wkt, Affine(*header.transform))
        limit = int(whole.shape[0]) * int(whole.shape[1]) if whole is not None else values.size
        rows.append({"scene_ids": sidecar.get("scene_ids", []), "ndvi_path": path,
                     **ndvi_statistics(values, inside, sidecar.get("covered_pixels"),
                                       _count(sidecar.get("aoi_pixels"), limit))})
    return rows


def _count(value: Any, limit: int) -> int | None:
    """A pixel count from a sidecar, at most ``limit`` (the AOI's whole window on the output's
    grid): the sidecar is third-party input, anything else is ignored."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


def write_stats(rows: list[dict[str, Any]], root: str, *, date: str, aoi: str, geometry: BaseGeometry,
                storage_options: dict[str, Any] | None = None) -> str:
    """Replace the statistics of one (date, AOI) atomically; an empty ``rows`` writes one
    row without a scene, so a date without scenes is an explicit result."""
    if not rows:
        rows = [empty_row()]
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


def empty_row() -> dict[str, Any]:
    """The row of a date x AOI without any scene."""
    return {"scene_ids": [], "coverage": 0.0, "valid_fraction": 0.0, "valid_pixels": 0, "aoi_pixels": 0,
            "ndvi_path": None, **_EMPTY}


def read_stats(root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None):
    """The whole time series as a GeoDataFrame (EPSG:4326 AOI geometries), one row per
    (date, AOI) as :data:`STATS_SCHEMA`, sorted by date then AOI; ``date`` is ``datetime64``
    (compare it with ``"2024-01-05"`` or a ``datetime``)."""
    import geopandas as gpd
    import pyarrow.dataset as ds

    _, fs, path = resolve_root(os.fspath(root), storage_options)
    files = [f.path for f in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
             if f.path.endswith(".parquet") and not f.base_name.startswith(".")]
    if not files:
        empty = {name: [] for name in STATS_SCHEMA.names if name != "geometry"}
        empty["date"] = _dates([])
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=4326))
    table = ds.dataset(files, schema=STATS_SCHEMA, filesystem=fs, format="parquet").to_table()
    frame = table.to_pandas()
    frame["date"] = _dates(frame["date"].astype(str))  # stored as a dictionary, as the hive partition reads
    frame["geometry"] = shapely.from_wkb(frame["geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326).sort_values(["date", "aoi"]).reset_index(drop=True)


TIMESERIES_COLUMNS = ["aoi", "date", "mean", "median", "p10", "p90", "valid_fraction", "coverage", "scenes",
                      "scene_ids"]
"""The columns of :func:`ndvi_timeseries`."""


def ndvi_timeseries(stats: Any, storage_options: dict[str, Any] | None = None, *,
                    aois: Iterable[str] | None = None):
    """The NDVI time series per AOI as a tidy ``pandas.DataFrame``, sorted by AOI then date.

    ``stats``: the statistics folder (local path or ``s3://``, as ``ndvi_stats`` writes it) or
    a table :func:`read_stats` returned. ``aois``: keep only these AOIs. Columns
    (:data:`TIMESERIES_COLUMNS`): ``aoi``; ``date`` (``datetime64``, one row per AOI and date);
    ``mean``, ``median``, ``p10``, ``p90`` of the valid NDVI pixels (NaN when none was valid:
    a cloudy or empty date); ``valid_fraction`` (share of the AOI's pixels with a valid NDVI);
    ``coverage`` (share covered by any scene); ``scenes`` (how many scenes were mosaicked);
    ``scene_ids`` (their ids, comma-separated).
    """
    import pandas as pd

    frame = stats if isinstance(stats, pd.DataFrame) else read_stats(stats, storage_options)
    if aois is not None:
        frame = frame[frame["aoi"].isin(list(aois))]
    ids = [list(v) if v is not None else [] for v in frame["scene_ids"]]
    out = pd.DataFrame({
        "aoi": frame["aoi"].astype(str).to_numpy(),
        "date": _dates(frame["date"].astype(str).str[:10]).to_numpy(),
        **{name: pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
           for name in ("mean", "median", "p10", "p90", "valid_fraction", "coverage")},
        "scenes": np.array([len(v) for v in ids], dtype=np.int64),
        "scene_ids": [",".join(str(i) for i in v) for v in ids],
    }, columns=TIMESERIES_COLUMNS)
    return out.sort_values(["aoi", "date"], kind="stable").reset_index(drop=True)


def _dates(values: Any):
    """``YYYY-MM-DD`` strings as a ``datetime64`` Series (a bad string raises, naming it)."""
    import pandas as pd

    return pd.to_datetime(pd.Series(values, dtype=object), format="%Y-%m-%d").astype("datetime64[ns]")


def _geo_metadata(geometry: BaseGeometry) -> bytes:
    import json

    return json.dumps({
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": [geometry.geom_type],
                                 "bbox": list(geometry.bounds)}},
    }).encode()
