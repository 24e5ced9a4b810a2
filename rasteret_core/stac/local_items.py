"""Local STAC items: load a file of items and filter them in-process like a STAC API would.

Supported files: a GeoJSON ``FeatureCollection`` (or a JSON list of items, or one item),
newline-delimited JSON (one item per line), and stac-geoparquet (``.parquet``; a rasteret
collection partition works too). Relative asset hrefs are resolved against the file's folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import shapely
import shapely.geometry

from rasteret_core.errors import ItemsFileError


_TOP_LEVEL = {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets", "collection"}


def load_items(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The STAC items (dicts) in ``path``; cached while the file is unchanged."""
    path = Path(path).expanduser().resolve()
    try:
        st = path.stat()
    except OSError as exc:
        raise ItemsFileError(f"cannot read items file {path}: {exc.strerror or exc}") from None
    # a copy per call: callers may edit items (e.g. rewrite hrefs) without touching the cache
    return json.loads(_load_cached(str(path), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int, _size: int) -> str:
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        items = _read_geoparquet(p)
    else:
        items = _read_json(p)
    base = p.parent
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            raise ItemsFileError(f"{p}: every entry must be a STAC item with an id")
        for asset in (item.get("assets") or {}).values():
            _resolve_hrefs(asset, base)
    return json.dumps(items)


def _read_json(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if data is None:  # NDJSON
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ItemsFileError(f"{path}: neither JSON nor NDJSON ({exc})") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return list(data.get("features") or [])
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise ItemsFileError(f"{path}: expected a FeatureCollection, a list of items or NDJSON")


def _read_geoparquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any Arrow failure means "not readable"
        raise ItemsFileError(f"{path}: not a readable Parquet file ({exc})") from None
    items = []
    for row in table.to_pylist():
        items.append(_row_to_item(row))
    return items


def _row_to_item(row: dict[str, Any]) -> dict[str, Any]:
    geometry = row.get("geometry")
    geom = shapely.from_wkb(geometry) if isinstance(geometry, (bytes, bytearray)) else None
    bbox = row.get("bbox")
    if isinstance(bbox, Mapping):
        bbox = [bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"]]
    elif bbox is None and geom is not None:
        bbox = list(geom.bounds)
    assets = row.get("assets")
    assets = json.loads(assets) if isinstance(assets, str) else _drop_nulls(assets or {})
    props_json = row.get("properties")
    if isinstance(props_json, str):  # a rasteret collection: all properties in one JSON column
        properties = json.loads(props_json)
    else:
        properties = {k: _jsonable(v) for k, v in row.items() if k not in _TOP_LEVEL and v is not None}
    if isinstance(row.get("datetime"), dt.datetime):
        properties["datetime"] = _iso(row["datetime"])
    item = {
        "type": "Feature",
        "stac_version": row.get("stac_version") or "1.0.0",
        "stac_extensions": row.get("stac_extensions") or [],
        "id": row["id"],
        "geometry": shapely.geometry.mapping(geom) if geom is not None else None,
        "bbox": [float(v) for v in bbox] if bbox is not None else None,
        "properties": properties,
        "links": _drop_nulls(row.get("links") or []),
        "assets": assets,
    }
    if row.get("collection"):
        item["collection"] = row["collection"]
    return item


def _drop_nulls(value: Any) -> Any:
    """stac-geoparquet fills absent struct keys with nulls; STAC JSON leaves them out."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _resolve_hrefs(asset: Any, base: Path) -> None:
    if not isinstance(asset, dict):
        return
    href = asset.get("href")
    if isinstance(href, str) and href and "://" not in href and not os.path.isabs(href):
        asset["href"] = str((base / href).resolve())
    for alt in (asset.get("alternate") or {}).values():
        _resolve_hrefs(alt, base)


# --- in-process filtering ------------------------------------------------------------------
def item_datetime_range(item: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    """The item's ``datetime`` (or ``start_datetime``/``end_datetime``) as UTC datetimes."""
    props = item.get("properties") or {}
    when = props.get("datetime")
    if when:
        t = parse_timestamp(when)
        return t, t
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if start and end:
        return parse_timestamp(start), parse_timestamp(end)
    return None


def parse_timestamp(text: str) -> dt.datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def item_geometry(item: Mapping[str, Any]):
    """The item footprint as a shapely geometry (from ``geometry``, else ``bbox``)."""
    if item.get("geometry"):
        return shapely.geometry.shape(item["geometry"])
    if item.get("bbox"):
        b = item["bbox"]
        return shapely.box(b[0], b[1], b[-2 if len(b) == 4 else 3], b[-1 if len(b) == 4 else 4])
    return None


def matches(
    item: Mapping[str, Any],
    *,
    collection: str | None = None,
    geometry: Any = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    cloud_cover_property: str = "eo:cloud_cover",
    cloud_cover_lt: float | None = None,
    platform_property: str = "platform",
    platforms: Iterable[str] | None = None,
) -> bool:
    """Whether ``item`` passes the search filters (all optional; inclusive datetime range)."""
    if collection is not None and item.get("collection") not in (None, collection):
        return False
    props = item.get("properties") or {}
    if start is not None or end is not None:
        span = item_datetime_range(item)
        if span is None:
            return False
        if start is not None and span[1] < start:
            return False
        if end is not None and span[0] > end:
            return False
    if cloud_cover_lt is not None:
        value = props.get(cloud_cover_property)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value < cloud_cover_lt:
            return False
    if platforms is not None and props.get(platform_property) not in set(platforms):
        return False
    if geometry is not None:
        footprint = item_geometry(item)
        if footprint is None or not footprint.intersects(geometry):
            return False
    return True
