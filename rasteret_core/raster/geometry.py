"""Areas of interest: validation and reprojection to a scene's CRS."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from rasteret_core.errors import GeometryError
from rasteret_core.types import BBox


def as_geometry(value: Any) -> BaseGeometry:
    """A shapely geometry from a shapely object, a GeoJSON-like mapping or WKT."""
    if value is None:
        raise GeometryError("a geometry is missing (None)")
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


ID_COLUMNS = ("name", "id")
"""Columns (or GeoJSON properties) that name geometries, in order of preference."""


def id_column(columns: Iterable[str]) -> str | None:
    """The column that names geometries: ``name``, else ``id``, else ``None`` (use the index)."""
    present = set(columns)
    return next((c for c in ID_COLUMNS if c in present), None)


def _feature_id(feature: Mapping[str, Any], position: int) -> Any:
    props = feature.get("properties") or {}
    for key in ID_COLUMNS:
        if props.get(key) not in (None, ""):
            return props[key]
    return feature.get("id") if feature.get("id") not in (None, "") else position


def _is_geojson_geometry(value: Any) -> bool:
    return isinstance(value, Mapping) and "type" in value and ("coordinates" in value or "geometries" in value)


def named_geometries(geometries: Any) -> dict[str, BaseGeometry]:
    """``{id: polygon}`` from any of the accepted AOI inputs, one id rule for all of them.

    The id of each geometry is, in this order: the mapping key (``{"farm_a": polygon}``); the
    ``name`` then ``id`` column of a GeoDataFrame (its index when it has neither); the
    ``name`` then ``id`` property of a GeoJSON Feature (its ``id`` member, else its
    position); ``"1"``, ``"2"``, ... for a list of geometries; ``"1"`` for a single one. Ids
    are strings and may contain spaces (they are not file names).

    Args:
        geometries: a mapping, a GeoDataFrame/GeoSeries (reprojected to EPSG:4326 when it has
            a CRS), a GeoJSON Feature/FeatureCollection, one geometry (shapely, GeoJSON or
            WKT) or a list of them.

    Returns:
        ``{id: polygon}`` in input order.

    Raises:
        GeometryError: no geometries, a duplicate id, or a geometry that is not a valid polygon.
    """
    if isinstance(geometries, Mapping) and geometries.get("type") == "FeatureCollection":
        items = [(_feature_id(f, i), f.get("geometry")) for i, f in enumerate(geometries.get("features") or [], start=1)]
    elif isinstance(geometries, Mapping) and geometries.get("type") == "Feature":
        items = [(_feature_id(geometries, 1), geometries.get("geometry"))]
    elif isinstance(geometries, Mapping) and not _is_geojson_geometry(geometries):
        items = list(geometries.items())
    elif hasattr(geometries, "geometry") and hasattr(geometries, "index"):  # GeoDataFrame / GeoSeries
        frame = geometries.to_crs(4326) if getattr(geometries, "crs", None) else geometries
        column = id_column(getattr(frame, "columns", ()))
        keys = frame[column] if column else frame.index
        shapes = frame.geometry if hasattr(frame, "columns") else frame
        items = list(zip(keys, shapes))
    elif isinstance(geometries, (BaseGeometry, Mapping, str)):
        items = [(1, geometries)]
    else:
        items = []
        for i, value in enumerate(geometries, start=1):
            is_feature = isinstance(value, Mapping) and value.get("type") == "Feature"
            items.append((_feature_id(value, i), value.get("geometry")) if is_feature else (i, value))
    if not items:
        raise GeometryError("no geometries given")
    out: dict[str, BaseGeometry] = {}
    for key, value in items:
        gid = str(key)
        if gid in out:
            raise GeometryError(f"geometry id {gid!r} appears twice; ids must be unique")
        out[gid] = check_polygon(as_geometry(value), f"geometry {gid!r}")
    return out


def check_lonlat(geometries: Mapping[str, BaseGeometry]) -> None:
    """Refuse coordinates that cannot be longitude/latitude, naming the geometry and ``crs=``.

    Raises:
        GeometryError: a geometry's bounds leave [-180, 180] x [-90, 90].
    """
    for gid, geom in geometries.items():
        x0, y0, x1, y1 = geom.bounds
        if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
            raise GeometryError(
                f"geometry {gid!r} has coordinates ({x0:.6g}, {y0:.6g}, {x1:.6g}, {y1:.6g}) outside the"
                " longitude/latitude range; geometries are read as EPSG:4326 (lon, lat) unless you pass"
                " their CRS, e.g. crs='EPSG:32643' for UTM 43N"
            )


def swap_axes(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` with x and y exchanged (to diagnose (lat, lon) given for (lon, lat))."""
    return shapely.transform(geom, lambda coords: coords[:, ::-1])


def to_crs(geom: BaseGeometry, dst_epsg: int | str, src_crs: str = "EPSG:4326") -> BaseGeometry:
    """Reproject ``geom`` (densifying edges as GDAL does) to ``EPSG:dst_epsg``, or to the CRS
    ``dst_epsg`` names when it is a string (``"EPSG:n"`` or WKT, e.g. ``CogHeader.crs``)."""
    from rasterio.warp import transform_geom

    dst = f"EPSG:{dst_epsg}" if isinstance(dst_epsg, int) else dst_epsg
    if src_crs.upper() == dst.upper():
        return geom
    if src_crs.upper() == "EPSG:4326":
        geom = _within_area_of_use(geom, dst)
    return shape(transform_geom(src_crs, dst, geom.__geo_interface__))


AREA_OF_USE_MARGIN = 15.0
"""Degrees kept around a CRS's area of use when a lon/lat geometry is clipped to it: far more
than any AOI straddling a UTM zone edge needs, far less than a hemisphere."""


def _within_area_of_use(geom: BaseGeometry, dst: str) -> BaseGeometry:
    """``geom`` (lon/lat) clipped to where ``dst`` can project it (its area of use plus
    :data:`AREA_OF_USE_MARGIN`). A whole-world box projected to a UTM zone otherwise collapses
    to a line and the read reported "smaller than a pixel"; an AOI near its scene is unchanged."""
    from pyproj import CRS

    try:
        area = CRS.from_user_input(dst).area_of_use
    except Exception:  # noqa: BLE001 - a CRS pyproj cannot describe: project as given
        return geom
    if area is None:
        return geom
    m = AREA_OF_USE_MARGIN
    west, south, east, north = area.west - m, max(area.south - m, -90.0), area.east + m, min(area.north + m, 90.0)
    if area.west > area.east or east - west >= 360:  # crosses the antimeridian, or global: no clipping
        return geom
    x0, y0, x1, y1 = geom.bounds
    if x0 >= west and x1 <= east and y0 >= south and y1 <= north:
        return geom
    clipped = geom.intersection(shapely.box(west, south, east, north))
    # wholly outside: projected as before, it lands far from every image of that CRS
    return clipped if not clipped.is_empty else geom


def union_bounds(geoms: Iterable[BaseGeometry]) -> BBox:
    """The (minx, miny, maxx, maxy) of the union of ``geoms``."""
    return tuple(shapely.union_all(list(geoms)).bounds)
