"""Areas of interest: validation and reprojection to a scene's CRS."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from rasteret_core.errors import RasteretError


class GeometryError(RasteretError, ValueError):
    """An AOI that cannot be read: not a polygon, invalid, or empty."""


def as_geometry(value: Any) -> BaseGeometry:
    """A shapely geometry from a shapely object, a GeoJSON-like mapping or WKT."""
    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, Mapping) or hasattr(value, "__geo_interface__"):
        return shape(value)
    if isinstance(value, str):
        return shapely.from_wkt(value)
    raise GeometryError(f"not a geometry: {type(value).__name__}")


def check_polygon(geom: BaseGeometry, name: str = "geometry") -> BaseGeometry:
    """Refuse what cannot be clipped to: points, lines, empty or invalid polygons."""
    if geom is None or geom.is_empty:
        raise GeometryError(f"{name} is empty")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise GeometryError(
            f"{name} is a {geom.geom_type}; AOIs must be polygons (buffer a point to sample around it)"
        )
    if not geom.is_valid:
        raise GeometryError(f"{name} is invalid: {shapely.is_valid_reason(geom)} (shapely.make_valid can repair it)")
    return geom


def named_geometries(geometries: Any) -> dict[str, BaseGeometry]:
    """``{id: polygon}`` from a mapping, a GeoDataFrame/GeoSeries, one geometry, or a list (ids 1..n)."""
    if isinstance(geometries, Mapping) and not ("type" in geometries and "coordinates" in geometries):
        items = list(geometries.items())
    elif hasattr(geometries, "geometry") and hasattr(geometries, "index"):  # GeoDataFrame
        frame = geometries.to_crs(4326) if getattr(geometries, "crs", None) else geometries
        items = list(zip(frame.index, frame.geometry))
    elif isinstance(geometries, (BaseGeometry, Mapping, str)):
        items = [(1, geometries)]
    else:
        items = list(enumerate(geometries, start=1))
    if not items:
        raise GeometryError("no geometries given")
    out = {}
    for key, value in items:
        out[str(key)] = check_polygon(as_geometry(value), f"geometry {key!r}")
    return out


def to_crs(geom: BaseGeometry, dst_epsg: int, src_crs: str = "EPSG:4326") -> BaseGeometry:
    """Reproject ``geom`` (densifying edges as GDAL does) to ``EPSG:dst_epsg``."""
    from rasterio.warp import transform_geom

    if src_crs.upper() == f"EPSG:{dst_epsg}":
        return geom
    return shape(transform_geom(src_crs, f"EPSG:{dst_epsg}", geom.__geo_interface__))


def union_bounds(geoms: Iterable[BaseGeometry]) -> tuple[float, float, float, float]:
    return tuple(shapely.union_all(list(geoms)).bounds)
