"""The Arrow schema of a collection partition and its GeoParquet 1.1 metadata.

One row per scene (STAC item). Columns follow stac-geoparquet where they overlap:

- ``id`` (string), ``collection`` (string), ``datetime`` (timestamp[us, tz=UTC])
- ``geometry``: WKB footprint in lon/lat (EPSG:4326), the GeoParquet primary column
- ``bbox``: struct<xmin, ymin, xmax, ymax: double>, declared as the GeoParquet 1.1 covering
- well-known STAC properties as typed columns: ``eo:cloud_cover`` (double, the source's
  cloud-cover value), ``platform``, ``constellation`` (string), ``proj:epsg`` (int64),
  ``proj:code`` (string)
- ``properties``: every STAC property as a JSON string (lossless; the typed columns above are
  copies for filtering), ``assets``: the item's full STAC assets as a JSON string. JSON strings
  keep one stable schema across partitions whatever the provider puts in its items.
- ``rasteret:requester_pays`` (bool)
- one struct column per band, named by band code (``B04``): ``href``, ``error``, ``scale``,
  ``offset``, ``rule``, ``reason`` (the radiometry decided at harvest, see
  :mod:`rasteret_core.radiometry`: physical = DN * scale + offset) followed by the fields of
  :meth:`CogHeader.arrow_type`. A failed harvest has ``error`` set ("<ErrorType>: message")
  and null header fields.

The partition date is not a column: it is the hive directory name (``date=2024-01-15``).
File key-value metadata carries ``geo`` and ``rasteret_schema_version``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
import shapely

from rasteret_core.errors import ArgumentError
from rasteret_core.cog import CogHeader, StoredHeaderError
from rasteret_core.cog.header_check import stored_header
from rasteret_core.cog.urls import same_place
from rasteret_core.collection.scene import BandAsset, Scene

SCHEMA_VERSION = "1"
SCHEMA_VERSION_KEY = b"rasteret_schema_version"
GEOMETRY_COLUMN = "geometry"
COVERING_COLUMN = "bbox"
ASSETS_PROPERTY = "assets"
"""Key of ``Scene.properties`` carrying the item's full STAC assets (stored in ``assets``)."""

BBOX_TYPE = pa.struct([("xmin", pa.float64()), ("ymin", pa.float64()), ("xmax", pa.float64()), ("ymax", pa.float64())])
_EXTRA_BAND_FIELDS = [
    ("href", pa.string()), ("error", pa.string()), ("scale", pa.float64()), ("offset", pa.float64()),
    ("rule", pa.string()), ("reason", pa.string()),
]

# Typed copies of common STAC properties: (column, arrow type, python converter)
_PROPERTY_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("platform", pa.string()),
    ("constellation", pa.string()),
    ("proj:epsg", pa.int64()),
    ("proj:code", pa.string()),
]


def band_type() -> pa.StructType:
    """Struct type of a band column: ``href, error, scale, offset, rule, reason`` + the COG header fields."""
    header = CogHeader.arrow_type()
    return pa.struct(_EXTRA_BAND_FIELDS + [header.field(i) for i in range(header.num_fields)])


def collection_schema(bands: Iterable[str]) -> pa.Schema:
    """The partition schema for a collection storing ``bands`` (without the ``geo`` metadata)."""
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("collection", pa.string()),
        pa.field("datetime", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(GEOMETRY_COLUMN, pa.binary(), nullable=False),
        pa.field(COVERING_COLUMN, BBOX_TYPE),
        pa.field("eo:cloud_cover", pa.float64()),
        *(pa.field(name, typ) for name, typ in _PROPERTY_COLUMNS),
        pa.field("properties", pa.string()),
        pa.field("assets", pa.string()),
        pa.field("rasteret:requester_pays", pa.bool_()),
    ]
    btype = band_type()
    fields += [pa.field(band, btype) for band in bands]
    return pa.schema(fields)


def reserved_columns() -> set[str]:
    """Column names a band code may not take."""
    return set(collection_schema([]).names) | {"date"}


def geo_metadata(geometries: list[Any]) -> dict[str, Any]:
    """GeoParquet 1.1 ``geo`` metadata for WKB footprints in EPSG:4326 with a bbox covering."""
    from pyproj import CRS

    types = sorted({g.geom_type for g in geometries})
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": types,
        "crs": CRS.from_epsg(4326).to_json_dict(),
        "covering": {
            "bbox": {
                "xmin": [COVERING_COLUMN, "xmin"], "ymin": [COVERING_COLUMN, "ymin"],
                "xmax": [COVERING_COLUMN, "xmax"], "ymax": [COVERING_COLUMN, "ymax"],
            }
        },
    }
    if geometries:
        bounds = shapely.total_bounds(geometries)
        column["bbox"] = [float(v) for v in bounds]
    return {
        "version": "1.1.0",
        "primary_column": GEOMETRY_COLUMN,
        "columns": {GEOMETRY_COLUMN: column},
        "creator": {"library": "rasteret"},
    }


# --- scenes -> table -----------------------------------------------------------------------
def scenes_to_table(scenes: list[Scene], bands: Iterable[str]) -> pa.Table:
    """Encode ``scenes`` with one struct column per code in ``bands``.

    Raises ``ValueError`` for a scene without timezone, a band not in ``bands`` or a value
    that does not fit the schema, before anything is written.
    """
    bands = list(bands)
    bad = sorted(set(bands) & reserved_columns())
    if bad:
        raise ArgumentError(f"band codes {bad} clash with collection columns")
    schema = collection_schema(bands)
    rows = [_scene_row(scene, bands) for scene in scenes]
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        raise ArgumentError(f"scenes do not fit the collection schema: {exc}") from exc
    metadata = {
        b"geo": json.dumps(geo_metadata([s.geometry for s in scenes])).encode(),
        SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(),
    }
    return table.replace_schema_metadata(metadata)


def _scene_row(scene: Scene, bands: list[str]) -> dict[str, Any]:
    if scene.datetime.tzinfo is None:
        raise ArgumentError(f"scene {scene.id!r}: datetime must be timezone-aware")
    extra = sorted(set(scene.bands) - set(bands))
    if extra:
        raise ArgumentError(f"scene {scene.id!r} has bands {extra} that the collection does not store")
    geometry = scene.geometry
    if geometry is None or geometry.is_empty:
        raise ArgumentError(f"scene {scene.id!r} has no footprint")
    xmin, ymin, xmax, ymax = geometry.bounds
    props = dict(scene.properties)
    assets = props.pop(ASSETS_PROPERTY, None)
    row: dict[str, Any] = {
        "id": scene.id,
        "collection": scene.collection,
        "datetime": scene.datetime.astimezone(timezone.utc),
        GEOMETRY_COLUMN: shapely.to_wkb(geometry),
        COVERING_COLUMN: {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax},
        "eo:cloud_cover": _float(scene.cloud_cover),
        "properties": json.dumps(props, default=str, allow_nan=True),
        "assets": json.dumps(assets, default=str) if assets is not None else None,
        "rasteret:requester_pays": bool(scene.requester_pays),
    }
    for name, typ in _PROPERTY_COLUMNS:
        row[name] = _coerce(props.get(name), typ)
    for band in bands:
        asset = scene.bands.get(band)
        row[band] = _band_row(asset) if asset is not None else None
    return row


def _band_row(asset: BandAsset) -> dict[str, Any]:
    out: dict[str, Any] = asset.header.to_arrow_dict() if asset.header is not None else {}
    out.update(href=asset.href, error=asset.error, scale=_float(asset.scale), offset=_float(asset.offset),
               rule=asset.rule, reason=asset.reason)
    return out


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _coerce(value: Any, typ: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_integer(typ):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return value if isinstance(value, str) else str(value)


# --- table -> scenes -----------------------------------------------------------------------
def table_bands(schema: pa.Schema) -> list[str]:
    """The band codes stored in a partition: struct columns that are not reserved."""
    reserved = reserved_columns()
    return [f.name for f in schema if f.name not in reserved and pa.types.is_struct(f.type)]


def table_to_scenes(table: pa.Table, bands: list[str] | None = None, *, successful_only: bool = False) -> list[Scene]:
    """Decode rows into :class:`Scene` values, with the given band columns (default: all).

    With ``successful_only`` failed bands (no header) are left out of ``Scene.bands``.
    """
    stored = table_bands(table.schema)
    wanted = stored if bands is None else [b for b in bands if b in stored]
    columns = [c for c in table.column_names if c not in stored or c in wanted]
    scenes = []
    for row in table.select(columns).to_pylist():
        scenes.append(_row_scene(row, wanted, successful_only))
    return scenes


def _row_scene(row: dict[str, Any], bands: list[str], successful_only: bool) -> Scene:
    props = json.loads(row["properties"]) if row.get("properties") else {}
    if row.get("assets"):
        props[ASSETS_PROPERTY] = json.loads(row["assets"])
    assets: dict[str, BandAsset] = {}
    for band in bands:
        data = row.get(band)
        if data is None:
            continue
        header, error = None, data.get("error")
        if data.get("width") is not None:
            # a stored collection is third-party input: its header is checked as a parsed one
            # would be, and must point where the item's href does
            try:
                header = stored_header(data, scene_id=str(row.get("id")), band=band)
                if not same_place(header.url, data.get("href") or ""):
                    raise StoredHeaderError(header.url, f"stored header of scene {row.get('id')!r} band {band!r}:"
                                                        " its URL is not the location of the item's href")
            except StoredHeaderError as exc:
                header, error = None, f"{type(exc).__name__}: {exc}"
        if successful_only and header is None and data.get("width") is None:
            continue  # a failed harvest; a refused stored header stays, so reads report why
        assets[band] = BandAsset(
            band=band, href=data["href"], header=header, error=error,
            scale=data.get("scale"), offset=data.get("offset"), rule=data.get("rule"), reason=data.get("reason"),
        )
    when: datetime = row["datetime"]
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    cloud = row.get("eo:cloud_cover")
    return Scene(
        id=row["id"],
        collection=row.get("collection") or "",
        datetime=when,
        geometry=shapely.from_wkb(row[GEOMETRY_COLUMN]),
        cloud_cover=None if cloud is None or (isinstance(cloud, float) and math.isnan(cloud)) else cloud,
        bands=assets,
        properties=props,
        requester_pays=bool(row.get("rasteret:requester_pays")),
    )
