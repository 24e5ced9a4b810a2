"""Search a data source's items: a STAC API through pystac-client, or a local items file.

Filters: ``bbox`` or ``intersects`` (lon/lat), an inclusive date/datetime range, cloud cover
strictly below N, platform(s), and a ``max_items`` guard. An empty result is a
:class:`SearchResult` with ``items == []`` and a message, never an exception.

Filter encoding (decided here): when the API declares the CQL2 *filter* conformance class,
cloud cover and platform go in a CQL2-JSON ``filter`` (the OGC standard; Earth Search,
landsatlook's stac-server and pgstac support it); otherwise in the ``query`` extension.
Results are then re-checked in-process with the same predicates, so an API that compares
``eo:cloud_cover`` as text or ignores a filter cannot let wrong items through.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import shapely.geometry

from rasteret_core.errors import ArgumentError, InvalidItemError, StacSearchError
from rasteret_core.progress import Progress
from rasteret_core.stac import local_items
from rasteret_core.stac.sources import DataSource
from rasteret_core.stac.validate import split_valid
from rasteret_core.types import BBox

log = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 10_000
DEFAULT_PAGE_SIZE = 100


@dataclass
class SearchResult:
    """Items found by :func:`search`, as STAC item dicts, and how the search went.

    ``truncated`` is true when more items matched than ``max_items`` allowed;
    ``message`` explains empty and truncated results in words.
    """

    items: list[dict[str, Any]]
    source: DataSource
    parameters: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    pages: int = 0
    message: str = ""
    rejected: list[InvalidItemError] = field(default_factory=list)
    """Items dropped as malformed, each naming the item and the field (never fatal)."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def empty(self) -> bool:
        return not self.items


@dataclass(frozen=True)
class SearchFilters:
    """Validated search filters (UTC datetimes, lon/lat geometry, platform list)."""

    start: dt.datetime
    end: dt.datetime
    bbox: BBox | None = None
    intersects: dict[str, Any] | None = None
    cloud_cover_lt: float | None = None
    platforms: tuple[str, ...] | None = None

    @property
    def datetime_interval(self) -> str:
        return f"{_rfc3339(self.start)}/{_rfc3339(self.end)}"

    def geometry(self):
        if self.intersects is not None:
            return shapely.geometry.shape(self.intersects)
        if self.bbox is not None:
            return shapely.box(*self.bbox)
        return None


def search(
    source: DataSource,
    *,
    date_range: tuple[Any, Any],
    bbox: Iterable[float] | None = None,
    intersects: Any = None,
    cloud_cover_lt: float | None = None,
    platform: Any = None,
    max_items: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    filter_mode: str = "auto",
    timeout: float = 60.0,
    progress: bool = True,
) -> SearchResult:
    """Find ``source``'s items matching the filters.

    ``date_range`` is ``(start, end)``: ``YYYY-MM-DD`` dates (inclusive, whole UTC days),
    ISO datetimes, ``date`` or ``datetime`` values. ``platform`` is a name, a list, or the
    seed's ``{"in": [...]}`` / ``{"eq": name}``. ``max_items`` (default 10,000) bounds the
    result; ``filter_mode`` is ``"auto"``, ``"filter"`` (CQL2-JSON) or ``"query"``.
    Raises ``ValueError`` for bad arguments and :class:`StacSearchError` (naming the
    endpoint) when the API cannot be reached or answers with an error.
    """
    filters = make_filters(date_range=date_range, bbox=bbox, intersects=intersects,
                           cloud_cover_lt=cloud_cover_lt, platform=platform)
    limit = DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
    if limit < 1:
        raise ArgumentError("max_items must be >= 1")
    if filter_mode not in ("auto", "filter", "query"):
        raise ArgumentError("filter_mode must be 'auto', 'filter' or 'query'")
    if source.items_path is not None:
        result = _search_local(source, filters, limit)
    else:
        result = _search_api(source, filters, limit, page_size, filter_mode, timeout, progress)
    if result.truncated:
        result.message = (
            f"{len(result.items)} items returned; more match: max_items={limit} reached "
            "(narrow the search or raise max_items)"
        )
        log.warning("%s: %s", source.name, result.message)
    elif result.empty:
        result.message = f"no {source.name} items match {describe_filters(filters)}"
        log.info("%s", result.message)
    else:
        result.message = f"{len(result.items)} {source.name} items found"
    return result


def make_filters(
    *,
    date_range: tuple[Any, Any],
    bbox: Iterable[float] | None = None,
    intersects: Any = None,
    cloud_cover_lt: float | None = None,
    platform: Any = None,
) -> SearchFilters:
    """Validate and normalise search arguments (``ValueError`` with the reason)."""
    start, end = parse_datetime_range(date_range)
    box = None
    if bbox is not None:
        try:
            box = tuple(float(v) for v in bbox)
        except (TypeError, ValueError):
            raise ArgumentError(f"bbox must be 4 numbers (xmin, ymin, xmax, ymax), got {bbox!r}") from None
        if len(box) != 4:
            raise ArgumentError(f"bbox must be 4 numbers (xmin, ymin, xmax, ymax), got {bbox!r}")
        xmin, ymin, xmax, ymax = box
        if not (-180 <= xmin <= 180 and -180 <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
            raise ArgumentError(f"bbox {bbox!r} is not in lon/lat degrees (EPSG:4326)")
    geojson = None
    if intersects is not None:
        if bbox is not None:
            raise ArgumentError("give bbox or intersects, not both")
        geom = shapely.geometry.shape(intersects) if isinstance(intersects, Mapping) else intersects
        if not hasattr(geom, "is_valid") or geom.is_empty:
            raise ArgumentError("intersects must be a non-empty shapely geometry or GeoJSON geometry")
        geojson = shapely.geometry.mapping(geom)
    cloud = None
    if cloud_cover_lt is not None:
        try:
            cloud = float(cloud_cover_lt)
        except (TypeError, ValueError):
            raise ArgumentError(f"cloud_cover_lt must be a number, got {cloud_cover_lt!r}") from None
    return SearchFilters(start, end, box, geojson, cloud, parse_platform(platform))


def parse_platform(platform: Any) -> tuple[str, ...] | None:
    """``"LANDSAT_8"``, ``["LANDSAT_8", ...]``, ``{"in": [...]}`` or ``{"eq": ...}`` -> names."""
    if platform is None:
        return None
    if isinstance(platform, str):
        return (platform,)
    if isinstance(platform, Mapping):
        if set(platform) == {"in"} and isinstance(platform["in"], (list, tuple)):
            return tuple(str(p) for p in platform["in"])
        if set(platform) == {"eq"}:
            return (str(platform["eq"]),)
        raise ArgumentError(f"platform filter must be {{'in': [...]}} or {{'eq': name}}, got {platform!r}")
    if isinstance(platform, (list, tuple, set)):
        return tuple(str(p) for p in platform)
    raise ArgumentError(f"unsupported platform filter {platform!r}")


def parse_datetime_range(date_range: tuple[Any, Any]) -> tuple[dt.datetime, dt.datetime]:
    """``(start, end)`` as aware UTC datetimes; a date-only end covers its whole day."""
    if not isinstance(date_range, (tuple, list)) or len(date_range) != 2:
        raise ArgumentError(f"date_range must be a (start, end) pair, got {date_range!r}")
    start = _as_datetime(date_range[0], end=False)
    end = _as_datetime(date_range[1], end=True)
    if end < start:
        raise ArgumentError(f"date_range ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return start, end


def _as_datetime(value: Any, *, end: bool) -> dt.datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = dt.date.fromisoformat(text)
            else:
                value = local_items.parse_timestamp(text)
        except ValueError:
            raise ArgumentError(f"not a date: {value!r} (use YYYY-MM-DD or an ISO datetime)") from None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        t = dt.time.max if end else dt.time.min
        return dt.datetime.combine(value, t, tzinfo=dt.timezone.utc)
    raise ArgumentError(f"not a date: {value!r} (use YYYY-MM-DD or an ISO datetime)")


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def describe_filters(filters: SearchFilters) -> str:
    parts = [f"datetime {filters.datetime_interval}"]
    if filters.bbox is not None:
        parts.append(f"bbox {list(filters.bbox)}")
    if filters.intersects is not None:
        parts.append(f"intersects {filters.intersects.get('type')}")
    if filters.cloud_cover_lt is not None:
        parts.append(f"cloud cover < {filters.cloud_cover_lt:g}")
    if filters.platforms is not None:
        parts.append(f"platform in {list(filters.platforms)}")
    return ", ".join(parts)


def _matches(item: Mapping[str, Any], source: DataSource, filters: SearchFilters, geometry: Any) -> bool:
    return local_items.matches(
        item, collection=source.collection, geometry=geometry, start=filters.start, end=filters.end,
        cloud_cover_property=source.cloud_cover_property, cloud_cover_lt=filters.cloud_cover_lt,
        platform_property=source.platform_property, platforms=filters.platforms,
    )


# --- local items file ----------------------------------------------------------------------
def _validated(source: DataSource, items: list[Any]) -> tuple[list[Any], list[InvalidItemError]]:
    valid, rejected = split_valid(items, cloud_cover_property=source.cloud_cover_property,
                                  asset_keys=list(source.band_map.values()))
    for err in rejected[:20]:
        log.warning("%s: malformed item dropped: %s", source.name, err)
    return valid, rejected


def _search_local(source: DataSource, filters: SearchFilters, limit: int) -> SearchResult:
    items, rejected = _validated(source, local_items.load_items(source.items_path))
    geometry = filters.geometry()
    found = [item for item in items if _matches(item, source, filters, geometry)]
    found.sort(key=lambda it: (local_items.item_datetime_range(it)[0], it["id"]))
    return SearchResult(
        items=found[:limit], source=source, parameters={"items_path": source.items_path,
                                                        "filters": describe_filters(filters)},
        truncated=len(found) > limit, pages=1, rejected=rejected,
    )


# --- STAC API ------------------------------------------------------------------------------
def _search_api(
    source: DataSource, filters: SearchFilters, limit: int, page_size: int, filter_mode: str,
    timeout: float, progress: bool,
) -> SearchResult:
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses

    endpoint = source.stac_url
    try:
        client = Client.open(endpoint, timeout=timeout)
        mode = filter_mode
        if mode == "auto":
            mode = "filter" if client.conforms_to(ConformanceClasses.FILTER) else "query"
        kwargs: dict[str, Any] = dict(
            method="POST", collections=[source.collection], datetime=filters.datetime_interval,
            limit=min(page_size, limit + 1), max_items=limit + 1,
        )
        if filters.bbox is not None:
            kwargs["bbox"] = list(filters.bbox)
        if filters.intersects is not None:
            kwargs["intersects"] = filters.intersects
        kwargs.update(_property_filters(source, filters, mode))
        item_search = client.search(**kwargs)
        items: list[dict[str, Any]] = []
        pages = 0
        with Progress(None, f"search {source.name}", enabled=progress, unit="items") as bar:
            for page in item_search.pages_as_dicts():
                pages += 1
                features = page.get("features") or []
                items.extend(features)
                bar.update(len(features))
                if len(items) > limit:
                    break
    except StacSearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - pystac-client raises requests/pystac/API errors
        raise StacSearchError(endpoint, f"{type(exc).__name__}: {exc}") from exc
    geometry = filters.geometry()
    items, rejected = _validated(source, items)
    kept = [item for item in items if _matches(item, source, filters, geometry)]
    if len(kept) < len(items):
        log.warning("%s: %d items returned by %s did not match the filters and were dropped",
                    source.name, len(items) - len(kept), endpoint)
    return SearchResult(
        items=kept[:limit], source=source, parameters={"endpoint": endpoint, **_jsonable_kwargs(kwargs)},
        truncated=len(items) + len(rejected) > limit, pages=pages, rejected=rejected,
    )


def _property_filters(source: DataSource, filters: SearchFilters, mode: str) -> dict[str, Any]:
    if filters.cloud_cover_lt is None and filters.platforms is None:
        return {}
    if mode == "query":
        query: dict[str, Any] = {}
        if filters.cloud_cover_lt is not None:
            query[source.cloud_cover_property] = {"lt": filters.cloud_cover_lt}
        if filters.platforms is not None:
            query[source.platform_property] = {"in": list(filters.platforms)}
        return {"query": query}
    args: list[dict[str, Any]] = []
    if filters.cloud_cover_lt is not None:
        args.append({"op": "<", "args": [{"property": source.cloud_cover_property}, filters.cloud_cover_lt]})
    if filters.platforms is not None:
        args.append({"op": "in", "args": [{"property": source.platform_property}, list(filters.platforms)]})
    expr = args[0] if len(args) == 1 else {"op": "and", "args": args}
    return {"filter": expr, "filter_lang": "cql2-json"}


def _jsonable_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k != "method"}
