"""Items checked at the STAC boundary: a malformed item is a recorded failure naming its id
and the field, never an exception that aborts the other items of a search or a date.

Checked (only what rasteret reads): the item is an object with a string ``id``;
``properties`` is an object; ``datetime`` (or ``start_datetime``/``end_datetime``) is an
RFC 3339 string; ``bbox`` has 4 or 6 finite numbers; ``geometry`` is a GeoJSON geometry;
the source's cloud cover is a number in [0, 100]; ``assets`` is an object of objects whose
``href`` is a string; ``proj:shape`` two positive integers, ``proj:transform`` 6 or 9 finite
numbers, ``proj:epsg`` an integer; ``raster:bands`` scale/offset finite numbers.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from rasteret_core.errors import InvalidItemError
from rasteret_core.stac.local_items import parse_timestamp


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def item_id_of(item: Any) -> str:
    """The item's id as text for messages (``<no id>`` when it has none)."""
    if isinstance(item, Mapping) and isinstance(item.get("id"), (str, int)) and not isinstance(item.get("id"), bool):
        return str(item["id"])[:200]
    return "<no id>"


def check_item(item: Any, *, cloud_cover_property: str = "eo:cloud_cover", asset_keys: Iterable[str] | None = None) -> None:
    """Raise :class:`InvalidItemError` for the first problem of ``item``.

    ``asset_keys`` limits the asset checks to the assets that will be read (default: all).
    """

    item_id = item_id_of(item)

    def bad(field: str, reason: str):
        return InvalidItemError(item_id, field, reason)

    if not isinstance(item, Mapping):
        raise bad("item", f"is a {type(item).__name__}, not an object")
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise bad("id", f"must be a non-empty string, got {_show(item.get('id'))}")
    props = item.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, Mapping):
        raise bad("properties", f"must be an object, got a {type(props).__name__}")

    names = ("datetime",) if props.get("datetime") is not None else ("start_datetime", "end_datetime")
    for name in names:
        value = props.get(name)
        if not isinstance(value, str):
            raise bad(f"properties.{name}", f"must be an RFC 3339 string, got {_show(value)}")
        try:
            parse_timestamp(value)
        except (ValueError, OverflowError):
            raise bad(f"properties.{name}", f"is not an RFC 3339 timestamp: {_show(value)}") from None

    bbox = item.get("bbox")
    if bbox is not None and not (isinstance(bbox, list) and len(bbox) in (4, 6) and all(_number(v) for v in bbox)):
        raise bad("bbox", f"must be 4 or 6 finite numbers, got {_show(bbox)}")
    geometry = item.get("geometry")
    if geometry is not None:
        import shapely.geometry

        try:
            shape = shapely.geometry.shape(geometry)
        except Exception as exc:  # noqa: BLE001 - shapely raises many types on bad GeoJSON
            raise bad("geometry", f"is not a GeoJSON geometry ({type(exc).__name__})") from None
        if shape.is_empty:
            raise bad("geometry", "is empty")
    elif bbox is None:
        raise bad("geometry", "the item has neither geometry nor bbox")

    cloud = props.get(cloud_cover_property)
    if cloud is not None and not (_number(cloud) and 0 <= cloud <= 100):
        raise bad(f"properties.{cloud_cover_property}", f"must be a number from 0 to 100, got {_show(cloud)}")

    _check_proj(props, "properties", bad)
    assets = item.get("assets")
    if assets is None:
        assets = {}
    if not isinstance(assets, Mapping):
        raise bad("assets", f"must be an object, got a {type(assets).__name__}")
    keys = list(assets) if asset_keys is None else [k for k in asset_keys if k in assets]
    for key in keys:
        asset = assets[key]
        where = f"assets.{key}"
        if not isinstance(asset, Mapping):
            raise bad(where, f"must be an object, got a {type(asset).__name__}")
        if "href" in asset and not isinstance(asset["href"], str):
            raise bad(f"{where}.href", f"must be a string, got {_show(asset['href'])}")
        _check_proj(asset, where, bad)
        bands = asset.get("raster:bands")
        if bands is None:
            continue
        if not isinstance(bands, list) or not all(isinstance(b, Mapping) for b in bands):
            raise bad(f"{where}.raster:bands", f"must be a list of objects, got {_show(bands)}")
        for i, band in enumerate(bands):
            for name in ("scale", "offset", "nodata"):
                value = band.get(name)
                if value is None or (name == "nodata" and isinstance(value, str) and value in ("nan", "inf", "-inf")):
                    continue
                if not (_number(value) or (name == "nodata" and isinstance(value, float))):
                    raise bad(f"{where}.raster:bands[{i}].{name}", f"must be a number, got {_show(value)}")


def _check_proj(obj: Mapping[str, Any], where: str, bad) -> None:
    shape = obj.get("proj:shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 2
                                  and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise bad(f"{where}.proj:shape", f"must be two positive integers, got {_show(shape)}")
    transform = obj.get("proj:transform")
    if transform is not None and not (isinstance(transform, list) and len(transform) in (6, 9)
                                      and all(_number(v) for v in transform)):
        raise bad(f"{where}.proj:transform", f"must be 6 or 9 finite numbers, got {_show(transform)}")
    epsg = obj.get("proj:epsg")
    if epsg is not None and not (isinstance(epsg, int) and not isinstance(epsg, bool)):
        raise bad(f"{where}.proj:epsg", f"must be an integer, got {_show(epsg)}")


def split_valid(items: Iterable[Any], *, cloud_cover_property: str = "eo:cloud_cover",
                asset_keys: Iterable[str] | None = None) -> tuple[list[Any], list[InvalidItemError]]:
    """``(valid items, one InvalidItemError per rejected item)``, in order."""
    keys = list(asset_keys) if asset_keys is not None else None
    valid, rejected = [], []
    for item in items:
        try:
            check_item(item, cloud_cover_property=cloud_cover_property, asset_keys=keys)
        except InvalidItemError as err:
            rejected.append(err)
        else:
            valid.append(item)
    return valid, rejected
