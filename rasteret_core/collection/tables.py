"""Collections to and from tables: any Arrow-readable table of items in, Arrow and stac-geoparquet out.

In: a table with one row per item (a pyarrow Table, anything exposing ``__arrow_c_stream__``
such as a polars or DuckDB result, a (Geo)DataFrame, or a Parquet path) becomes STAC items
through a :class:`ColumnMap` (id, datetime, geometry, one href column per band, cloud cover),
or directly when it is stac-geoparquet; :func:`build_from_table` then harvests each band's
header once and stores the collection, as a STAC search would.

Out: a :class:`~rasteret_core.collection.Collection` is an Arrow stream (the PyCapsule
``__arrow_c_stream__``: ``pyarrow.table(collection)``, ``duckdb.sql("... from collection")``,
``polars.from_arrow``), and :func:`to_stac_geoparquet` writes its items as stac-geoparquet
(written by the ``stac-geoparquet`` library) that ``stac-geoparquet``, DuckDB and GeoPandas read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import shapely.geometry
from shapely.geometry import mapping

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection.harvest import harvest
from rasteret_core.collection.schema import GEOMETRY_COLUMN
from rasteret_core.collection.store import Collection
from rasteret_core.errors import ArgumentError, BuildError
from rasteret_core.stac.sources import DataSource
from rasteret_core.types import DateRange

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what: ``id``, ``datetime`` (timestamps or ISO strings), ``geometry``
    (WKB, WKT, GeoJSON or shapely, in lon/lat), ``bands`` (band code -> the column of its
    href), ``cloud_cover`` (percent, optional) and ``properties`` (more columns copied into
    the item's properties, by name)."""

    bands: Mapping[str, str]
    id: str = "id"
    datetime: str = "datetime"
    geometry: str = "geometry"
    cloud_cover: str | None = None
    properties: tuple[str, ...] = field(default_factory=tuple)


def read_table(table: Any) -> pa.Table:
    """``table`` as a pyarrow Table: a Table, an Arrow stream (PyCapsule), a DataFrame or a Parquet path."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, (str, os.PathLike)):
        return pq.read_table(os.fspath(table))
    if hasattr(table, "__arrow_c_stream__"):
        return pa.table(table)
    if hasattr(table, "to_wkb") or hasattr(table, "columns"):  # (Geo)DataFrame: geometries as WKB
        frame = table.to_wkb() if hasattr(table, "to_wkb") else table
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise ArgumentError(f"not a table: {type(table).__name__} (give a pyarrow Table, an Arrow stream,"
                        " a DataFrame or a Parquet path)")


def is_stac_geoparquet(table: pa.Table) -> bool:
    """Whether ``table`` is stac-geoparquet (items as rows, ``assets`` a struct column)."""
    names = set(table.column_names)
    return {"id", "geometry", "assets"} <= names and pa.types.is_struct(table.schema.field("assets").type)


def table_items(table: Any, source: DataSource, columns: ColumnMap | None = None) -> list[dict[str, Any]]:
    """STAC items from the rows of ``table``: stac-geoparquet as it is, any other table through
    ``columns`` (band codes are ``source``'s; each href goes to the asset key ``source`` reads).

    Raises:
        ArgumentError: a mapped column is missing, or a row has no id, datetime or geometry.
    """
    table = read_table(table)
    if columns is None:
        if not is_stac_geoparquet(table):
            raise ArgumentError("the table is not stac-geoparquet: give columns=ColumnMap(bands={code: href"
                                " column, ...}, id=..., datetime=..., geometry=...)")
        from stac_geoparquet.arrow import stac_table_to_items  # optional: only stac-geoparquet input needs it

        return [dict(item) for item in stac_table_to_items(table)]
    source.check_bands(list(columns.bands))
    wanted = [columns.id, columns.datetime, columns.geometry, *columns.bands.values(), *columns.properties]
    wanted += [columns.cloud_cover] if columns.cloud_cover else []
    missing = [c for c in dict.fromkeys(wanted) if c not in table.column_names]
    if missing:
        raise ArgumentError(f"the table has no column(s) {', '.join(map(repr, missing))};"
                            f" it has {', '.join(table.column_names[:20])}")
    return [_row_item(i, row, source, columns) for i, row in enumerate(table.select(list(dict.fromkeys(wanted))).to_pylist())]


def build_from_table(
    table: Any,
    source: DataSource,
    *,
    root: str | os.PathLike[str],
    columns: ColumnMap | None = None,
    bands: list[str] | None = None,
    name: str | None = None,
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> Collection:
    """A new collection at ``root`` from the items of ``table`` (see :func:`table_items`): each
    requested band's COG header read once, one partition per UTC date.

    Raises:
        CollectionExistsError: a collection is already stored at ``root``.
        BuildError: no header of any item could be read (the message names the first causes).
    """
    items = table_items(table, source, columns)
    bands = source.check_bands(bands if bands is not None else (list(columns.bands) if columns else None))
    result = harvest(items, source, bands=bands, reader_options=reader_options, progress=progress)
    if items and not result.scenes:
        causes = "; ".join(f"{f.item_id} {f.band}: {f.error}" for f in result.failures[:3])
        raise BuildError(f"none of the {len(items)} items' headers could be read; first causes: {causes}", None)
    collection = Collection.create(root, name=name, data_source=source, bands=bands, storage_options=storage_options)
    by_date: dict[dt.date, list] = {}
    for scene in result.scenes:
        by_date.setdefault(scene.datetime.astimezone(dt.timezone.utc).date(), []).append(scene)
    for day in sorted(by_date):
        collection.write_date(day, by_date[day])
    return collection


def collection_items(collection: Collection, *, date_range: DateRange | None = None) -> list[dict[str, Any]]:
    """The stored items as STAC item dicts (as harvested: properties and credential-free asset hrefs)."""
    items = []
    for row in collection.read_table(date_range=date_range).to_pylist():
        geometry = shapely.from_wkb(row[GEOMETRY_COLUMN])
        properties = json.loads(row["properties"]) if row.get("properties") else {}
        properties["datetime"] = row["datetime"].astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        if row.get("eo:cloud_cover") is not None:
            properties["eo:cloud_cover"] = row["eo:cloud_cover"]
        items.append({
            "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": row["id"],
            "collection": row.get("collection") or None, "geometry": mapping(geometry), "bbox": list(geometry.bounds),
            "properties": properties, "assets": json.loads(row["assets"]) if row.get("assets") else {}, "links": [],
        })
    return items


def to_stac_geoparquet(collection: Collection, path: str | os.PathLike[str], *,
                       date_range: DateRange | None = None) -> str:
    """Write the collection's items as stac-geoparquet at ``path`` (with the ``stac-geoparquet``
    library, so its readers, DuckDB and GeoPandas read it); returns the path."""
    from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet  # optional dependency

    items = collection_items(collection, date_range=date_range)
    if not items:
        raise ArgumentError(f"collection {collection.name!r} holds no items{' in that date range' if date_range else ''}")
    to_parquet(parse_stac_items_to_arrow(items), os.fspath(path))
    return os.fspath(path)


def _row_item(position: int, row: Mapping[str, Any], source: DataSource, columns: ColumnMap) -> dict[str, Any]:
    item_id = row[columns.id]
    if item_id in (None, ""):
        raise ArgumentError(f"row {position}: no id in column {columns.id!r}")
    when = _timestamp(row[columns.datetime], f"row {position} ({item_id})")
    geometry = _geometry(row[columns.geometry], f"row {position} ({item_id})")
    properties: dict[str, Any] = {"datetime": when}
    if columns.cloud_cover and row.get(columns.cloud_cover) is not None:
        properties["eo:cloud_cover"] = float(row[columns.cloud_cover])
    properties.update({name: row[name] for name in columns.properties})
    assets = {source.band_map[band]: {"href": row[col], "type": COG_MEDIA_TYPE, "roles": ["data"]}
              for band, col in columns.bands.items() if row.get(col)}
    return {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": str(item_id),
            "geometry": mapping(geometry), "bbox": list(geometry.bounds), "properties": properties,
            "assets": assets, "links": []}


def _timestamp(value: Any, where: str) -> str:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ArgumentError(f"{where}: {value[:40]!r} is not an ISO 8601 datetime") from None
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise ArgumentError(f"{where}: no datetime ({type(value).__name__})")


def _geometry(value: Any, where: str):
    geom = value if isinstance(value, shapely.Geometry) else None
    try:
        if isinstance(value, (bytes, bytearray)):
            geom = shapely.from_wkb(bytes(value))
        elif isinstance(value, str):
            geom = shapely.from_geojson(value) if value.lstrip().startswith("{") else shapely.from_wkt(value)
        elif isinstance(value, Mapping):
            geom = shapely.geometry.shape(value)
    except (TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise ArgumentError(f"{where}: not a geometry ({str(exc)[:80]})") from None
    if geom is None:
        raise ArgumentError(f"{where}: not a geometry ({type(value).__name__})")
    if geom.is_empty:
        raise ArgumentError(f"{where}: empty geometry")
    return geom

