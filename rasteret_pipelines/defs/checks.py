"""pandera schemas for every stage, run as blocking in-asset checks.

Each ``check_*`` function validates a pandas frame and returns an ``AssetCheckResult`` whose
metadata lists the failing rows and values, so a failed check says exactly what is wrong.
"""

from __future__ import annotations

import math
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa

from rasteret_core.cog import s3_endpoint_from_env
from rasteret_core.read import first_causes, s3_target
from rasteret_pipelines.defs.markdown import md_table

COLLECTION_CHECK = "collection_schema"
NDVI_CHECK = "ndvi_outputs_valid"
STATS_CHECK = "stats_schema"


def _header_problem(band: Any) -> str | None:
    """Why a stored band header is inconsistent, or None when it is fine (or a recorded failure)."""
    if band is None:
        return "missing band"
    if band.get("error"):
        return None  # a recorded per-asset failure, reported in the asset metadata
    width, height = band.get("width") or 0, band.get("height") or 0
    tw, th = band.get("tile_width") or 0, band.get("tile_height") or 0
    if min(width, height, tw, th) <= 0:
        return f"non-positive size {width}x{height} or tile {tw}x{th}"
    planes = band.get("samples_per_pixel", 1) if band.get("planar_configuration") == 2 else 1
    grid = math.ceil(width / tw) * math.ceil(height / th) * planes
    n_offsets, n_counts = _length(band.get("tile_offsets")), _length(band.get("tile_byte_counts"))
    if n_offsets != grid or n_counts != grid:
        return f"{n_offsets} offsets / {n_counts} byte counts for a {grid}-tile grid"
    if band.get("crs_epsg") is None and not band.get("crs_wkt"):
        return "no CRS"
    if _length(band.get("transform")) != 6:
        return "transform is not 6 values"
    return None


def _length(values: Any) -> int:
    return 0 if values is None else len(values)


def collection_schema(bands: list[str]) -> pa.DataFrameSchema:
    """One row per scene: ids unique, UTC datetimes, cloud cover in [0, 100], consistent headers."""
    columns: dict[str, pa.Column] = {
        "id": pa.Column(str, unique=True, nullable=False),
        "datetime": pa.Column("datetime64[us, UTC]", nullable=False, coerce=True),
        "eo:cloud_cover": pa.Column(float, pa.Check.in_range(0, 100), nullable=True, required=False),
        "geometry": pa.Column(nullable=False),
    }
    for band in bands:
        columns[band] = pa.Column(
            object,
            pa.Check(lambda s: s.map(_header_problem).isna(), error="header inconsistent with its tile grid"),
            nullable=False,
        )
    return pa.DataFrameSchema(columns, strict=False)


NDVI_OUTPUT_SCHEMA = pa.DataFrameSchema(
    {
        "path": pa.Column(str, unique=True),
        "scene_id": pa.Column(str),
        "dtype": pa.Column(str, pa.Check.eq("float32")),
        "crs": pa.Column(str, pa.Check.str_length(min_value=1)),
        "pixel_width": pa.Column(float, pa.Check.gt(0)),
        "pixel_height": pa.Column(float, pa.Check.lt(0)),
        "nodata_is_nan": pa.Column(bool, pa.Check.eq(True)),
        "min": pa.Column(float, pa.Check.ge(-1.0), nullable=True, coerce=True),
        "max": pa.Column(float, pa.Check.le(1.0), nullable=True, coerce=True),
    },
    strict=False,
)

STATS_SCHEMA = pa.DataFrameSchema(
    {
        "aoi": pa.Column(str),
        "date": pa.Column(str, pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$")),
        "scene_ids": pa.Column(object),
        **{name: pa.Column(float, pa.Check.in_range(-1.0, 1.0), nullable=True, coerce=True)
           for name in ("mean", "median", "min", "max", "p10", "p90")},
        "std": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True, coerce=True),
        "coverage": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
        "valid_fraction": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
        "valid_pixels": pa.Column(int, pa.Check.ge(0)),
        "aoi_pixels": pa.Column(int, pa.Check.ge(0)),
    },
    strict=False,
)


def output_schema(index: str = "NDVI") -> pa.DataFrameSchema:
    """The output check for ``index``: NDVI lies in [-1, 1]; another catalogue index has no
    common range (EVI, SAVI can leave it), so its values need only be finite."""
    if index.upper() == "NDVI":
        return NDVI_OUTPUT_SCHEMA
    finite = pa.Check(lambda s: s.isna() | np.isfinite(s), error="not a finite value")
    return NDVI_OUTPUT_SCHEMA.update_columns({"min": {"checks": [finite]}, "max": {"checks": [finite]}})


def stats_schema(index: str = "NDVI") -> pa.DataFrameSchema:
    """The statistics check for ``index`` (see :func:`output_schema` for the value range)."""
    if index.upper() == "NDVI":
        return STATS_SCHEMA
    finite = pa.Check(lambda s: s.isna() | np.isfinite(s), error="not a finite value")
    return STATS_SCHEMA.update_columns({name: {"checks": [finite]} for name in ("mean", "median", "min", "max", "p10",
                                                                                "p90", "std")})


def run_check(check_name: str, schema: pa.DataFrameSchema, frame: pd.DataFrame, *, asset_key: str | None = None) -> dg.AssetCheckResult:
    """Validate ``frame`` and describe every failure (column, check, row, value)."""
    if frame.empty:  # nothing to validate: an explicit empty result
        return dg.AssetCheckResult(check_name=check_name, passed=True, asset_key=asset_key, metadata={"rows_checked": 0})
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.head(20)
        rows = [(r.get("column"), r.get("check"), r.get("index"), r.get("failure_case")) for r in cases.to_dict("records")]
        table = md_table(["column", "check", "row", "value"], rows, max_cell=80)
        return dg.AssetCheckResult(
            check_name=check_name, passed=False, asset_key=asset_key,
            metadata={"failures": len(err.failure_cases), "rows_checked": len(frame), "failure_cases": dg.MetadataValue.md(table)},
            description=f"{len(err.failure_cases)} values failed {check_name}",
        )
    return dg.AssetCheckResult(check_name=check_name, passed=True, asset_key=asset_key, metadata={"rows_checked": len(frame)})


def collection_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(COLLECTION_CHECK, asset=asset, blocking=True,
                             description="columns, types, UTC dates, cloud cover range, headers consistent with their tile grid")


def ndvi_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(NDVI_CHECK, asset=asset, blocking=True,
                             description="float32 GeoTIFFs with CRS and north-up transform, values in [-1, 1] or NaN")


def stats_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(STATS_CHECK, asset=asset, blocking=True,
                             description="per-AOI, per-date statistics within their ranges")


def _where_s3_goes(endpoint_url: str | None) -> str:
    return s3_target(endpoint_url or s3_endpoint_from_env())


def all_reads_failed(what: str, failures: list[Any], endpoint_url: str | None) -> dg.Failure:
    """The step failure for a partition whose every read failed, naming the first causes.

    Not retried: the reader already retried each request with backoff, and a wrong endpoint
    or missing credentials do not heal by waiting.
    """

    causes = "; ".join(first_causes(failures))
    return dg.Failure(
        description=f"{what}: all {len(failures)} reads failed, first causes: {causes}; {_where_s3_goes(endpoint_url)}",
        metadata={"failed_reads": len(failures), "failures": dg.MetadataValue.md(_failure_table(failures))},
        allow_retries=False,
    )


def failed_reads_check(check_name: str, failures: list[tuple[str, str, str]], rows: int) -> dg.AssetCheckResult:
    """A failed check for outputs written while some reads failed (``(scene, band, error)`` rows)."""
    table = md_table(["scene", "band", "error"], failures[:50])
    return dg.AssetCheckResult(
        check_name=check_name, passed=False,
        description=f"{len(failures)} reads failed, so {rows} outputs lack those scenes; the failures table says why",
        metadata={"failed_reads": len(failures), "rows_checked": rows, "failures": dg.MetadataValue.md(table)},
    )


def _failure_table(failures: list[Any]) -> str:
    rows = [(getattr(f, "scene_id", getattr(f, "item_id", "")), f.band, f.error) for f in failures[:50]]
    return md_table(["scene", "band", "error"], rows)


def build_failed(day: str, error: Any, endpoint_url: str | None) -> dg.Failure:
    """The step failure for a date whose items were found but none of whose headers could be read."""
    report = error.report
    return dg.Failure(
        description=f"{day}: {error}; {_where_s3_goes(endpoint_url)}",
        metadata={"failed_assets": len(report.failures), "failures": dg.MetadataValue.md(_failure_table(report.failures))},
        allow_retries=False,
    )
