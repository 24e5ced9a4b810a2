"""Named areas of interest, from a GeoJSON or GeoParquet file."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from shapely.geometry.base import BaseGeometry

from rasteret_core.errors import AoiError, UnsafePathError
from rasteret_core.names import check_distinct
from rasteret_core.raster.geometry import id_column

_NAME = re.compile(r"[^\x00-\x1f\x7f/\\|,\[\]]{1,100}")
"""An AOI name: 1-100 characters, spaces and any script welcome; no control characters, no
path separators, none of ``| , [ ]`` (they delimit Dagster's date x AOI partition keys).
File and folder names are made from it by :func:`rasteret_core.names.safe_name`."""


def load_aois(path: str | os.PathLike[str], *, name_field: str | None = None) -> dict[str, BaseGeometry]:
    """Read named AOIs (EPSG:4326 polygons) keyed by their name.

    The name comes from ``name_field`` if given, else the ``name`` column, else ``id`` (the
    same rule as :func:`rasteret_core.raster.geometry.named_geometries`). Names become
    partition keys (file names are made path-safe from them), so they may hold spaces but no
    control characters, path separators, ``| , [ ]``, a leading ``.`` or ``..``.

    Args:
        path: a GeoJSON (or any file GDAL reads) or GeoParquet file.
        name_field: the column naming the AOIs (default: ``name``, else ``id``).

    Returns:
        ``{name: polygon}`` in EPSG:4326.

    Raises:
        AoiError: unreadable file, no name column, a name that is not usable, a duplicate
            name (also one differing only in letter case), or an empty, non-areal or invalid geometry (naming the AOI and the reason).
    """
    import geopandas as gpd
    import shapely

    path = Path(path)
    try:
        frame = gpd.read_parquet(path) if path.suffix.lower() in (".parquet", ".geoparquet") else gpd.read_file(path)
    except Exception as exc:  # fiona/pyogrio/pyarrow raise many types
        raise AoiError(f"cannot read AOIs from {path}: {exc}") from None
    if name_field is None:
        name_field = id_column(frame.columns) or "name"
    if name_field not in frame.columns:
        raise AoiError(f"{path}: no {name_field!r} (or 'id') column to name the AOIs; add a 'name' property to each feature")
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    aois: dict[str, BaseGeometry] = {}
    for name, geom in zip(frame[name_field], frame.geometry):
        name = str(name)
        if not _NAME.fullmatch(name) or ".." in name or name.startswith(".") or name != name.strip():
            raise AoiError(
                f"{path}: AOI name {name!r} cannot be used: names become partition keys, so they take"
                " 1-100 characters (spaces are fine) without control characters, '/', '\\', '|', ',',"
                f" '[', ']', surrounding spaces, a leading '.' or '..' (for example {_suggest(name)!r})"
            )
        if name in aois:
            raise AoiError(f"{path}: AOI name {name!r} appears twice")
        if geom is None or geom.is_empty:
            raise AoiError(f"{path}: AOI {name!r} has no geometry")
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise AoiError(f"{path}: AOI {name!r} is a {geom.geom_type}; AOIs must be polygons")
        if not geom.is_valid:
            raise AoiError(f"{path}: AOI {name!r} is invalid ({shapely.is_valid_reason(geom)})")
        aois[name] = geom
    if not aois:
        raise AoiError(f"{path}: no AOIs")
    try:
        check_distinct(aois, what="AOI names")
    except UnsafePathError as exc:
        raise AoiError(f"{path}: {exc}") from None
    return aois


def _suggest(name: str) -> str:
    """A usable spelling of ``name`` for the error message (refused characters become ``_``)."""
    text = re.sub(r"[\x00-\x1f\x7f/\\|,\[\]]+", "_", name).strip(" _.").replace("..", ".")
    return text[:100] or "aoi_1"


def geometry_fingerprint(geometry: BaseGeometry) -> str:
    """A short digest of an AOI's shape: equal for the same polygon however its file writes it
    (ring start, orientation, coordinates within 1e-9 degrees), different once it moves."""
    import shapely

    canonical = shapely.normalize(shapely.set_precision(geometry, 1e-9))
    return hashlib.sha256(shapely.to_wkb(canonical, output_dimension=2)).hexdigest()[:16]
