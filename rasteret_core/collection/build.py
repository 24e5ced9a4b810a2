"""Build a collection: search, harvest the headers, write one partition per UTC date."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.collection.harvest import AssetFailure, harvest
from rasteret_core.collection.scene import Scene
from rasteret_core.collection.store import Collection, WriteResult, parse_date
from rasteret_core.sources import DataSource
from rasteret_core.stac.search import SearchResult, search

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did: scenes written per date, failed assets, warnings, I/O counts.

    ``message`` says in words what happened, including why nothing was written.
    """

    collection: Collection
    search: SearchResult
    writes: list[WriteResult] = field(default_factory=list)
    failures: list[AssetFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    message: str = ""
    reused: int = 0
    """Scenes kept from the stored partition without reading their headers (unchanged items)."""

    @property
    def scenes(self) -> int:
        return sum(w.scenes for w in self.writes)

    @property
    def dates(self) -> list[dt.date]:
        return [w.date for w in self.writes if not w.removed]

    @property
    def empty(self) -> bool:
        return self.scenes == 0

    @property
    def requests_per_scene(self) -> float:
        return self.stats.requests / self.scenes if self.scenes else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values for logs and Dagster metadata."""
        return {
            "collection": self.collection.name,
            "root": self.collection.root,
            "scenes": self.scenes,
            "dates": [d.isoformat() for d in self.dates],
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "search_truncated": self.search.truncated,
            "reused_scenes": self.reused,
            "message": self.message,
            **{f"stats_{k}": v for k, v in self.stats.as_dict().items()},
        }


def build_collection(
    data_source: DataSource,
    *,
    root: str | Path,
    date_range: tuple[Any, Any],
    bbox: Iterable[float] | None = None,
    intersects: Any = None,
    cloud_cover_lt: float | None = None,
    platform: Any = None,
    bands: list[str] | None = None,
    max_items: int | None = None,
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    progress: bool = True,
    name: str | None = None,
    storage_options: dict[str, Any] | None = None,
    filter_mode: str = "auto",
) -> BuildReport:
    """Search ``data_source``, read every requested band's header, store one partition per date.

    Dates with results are (re)written atomically; other stored dates are left alone.
    An empty search still creates the (empty) collection and says so in ``message``.
    """
    return _build(
        data_source, root=root, date_range=date_range, bbox=bbox, intersects=intersects,
        cloud_cover_lt=cloud_cover_lt, platform=platform, bands=bands, max_items=max_items,
        reader_options=reader_options, progress=progress, name=name, storage_options=storage_options,
        filter_mode=filter_mode, only_date=None,
    )


def build_date(
    data_source: DataSource,
    date: str | dt.date,
    *,
    root: str | Path,
    bbox: Iterable[float] | None = None,
    intersects: Any = None,
    cloud_cover_lt: float | None = None,
    platform: Any = None,
    bands: list[str] | None = None,
    max_items: int | None = None,
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    progress: bool = True,
    name: str | None = None,
    storage_options: dict[str, Any] | None = None,
    filter_mode: str = "auto",
    reuse_unchanged: bool = True,
) -> BuildReport:
    """Rebuild the partition of one UTC ``date``: it ends up holding exactly today's search.

    Idempotent (a daily partition job can re-run it); a date without items has its
    partition removed. With ``reuse_unchanged`` (the default), a stored scene whose item has
    the same STAC ``updated`` time and asset hrefs, and whose requested bands all have a
    header, is kept as stored: a refresh of an unchanged date costs the search and zero
    header requests. Items without ``updated`` are always re-read.
    """
    day = parse_date(date)
    return _build(
        data_source, root=root, date_range=(day, day), bbox=bbox, intersects=intersects,
        cloud_cover_lt=cloud_cover_lt, platform=platform, bands=bands, max_items=max_items,
        reader_options=reader_options, progress=progress, name=name, storage_options=storage_options,
        filter_mode=filter_mode, only_date=day, reuse_unchanged=reuse_unchanged,
    )


def _build(
    source: DataSource, *, root: str | Path, date_range: tuple[Any, Any], bbox: Any, intersects: Any,
    cloud_cover_lt: float | None, platform: Any, bands: list[str] | None, max_items: int | None,
    reader_options: Any, progress: bool, name: str | None, storage_options: dict[str, Any] | None,
    filter_mode: str, only_date: dt.date | None, reuse_unchanged: bool = False,
) -> BuildReport:
    bands = source.check_bands(bands)
    found = search(
        source, date_range=date_range, bbox=bbox, intersects=intersects, cloud_cover_lt=cloud_cover_lt,
        platform=platform, max_items=max_items, filter_mode=filter_mode, progress=progress,
    )
    parameters = {
        "bbox": list(bbox) if bbox is not None else None,
        "date_range": [str(v) for v in date_range],
        "cloud_cover_lt": cloud_cover_lt,
        "platform": platform,
    }
    collection = Collection.create(
        root, name=name, data_source=source, bands=bands, storage_options=storage_options,
        extra={"search": parameters} if only_date is None else None,
    )
    report = BuildReport(collection=collection, search=found)
    kept: dict[str, Scene] = {}
    if only_date is not None and reuse_unchanged and only_date in collection.dates():
        stored = {s.id: s for s in collection.scenes(date_range=(only_date, only_date))}
        kept = {item["id"]: stored[item["id"]] for item in found.items
                if item.get("id") in stored and _unchanged(stored[item["id"]], item, source, bands)}
    to_read = [item for item in found.items if item.get("id") not in kept]
    harvested = harvest(to_read, source, bands=bands, reader_options=reader_options, progress=progress)
    report.failures, report.warnings, report.stats = harvested.failures, harvested.warnings, harvested.stats
    report.reused = len(kept)

    by_date: dict[dt.date, dict[str, Scene]] = {}
    for scene in [*kept.values(), *harvested.scenes]:
        day = scene.datetime.astimezone(dt.timezone.utc).date()
        by_date.setdefault(day, {})[scene.id] = scene  # a repeated id keeps its last copy
    if only_date is not None:
        by_date.setdefault(only_date, {})
        by_date = {only_date: by_date[only_date]}
    for day in sorted(by_date):
        report.writes.append(collection.write_date(day, list(by_date[day].values())))

    if found.empty:
        report.message = found.message
    else:
        report.message = (
            f"{report.scenes} scenes on {len(report.dates)} dates written to {collection.root};"
            f" {len(report.failures)} asset headers failed, {len(report.warnings)} STAC/header warnings,"
            f" {report.stats.requests} requests, {report.stats.bytes_fetched} bytes"
        )
        if report.reused:
            report.message += f"; {report.reused} unchanged scenes kept without reading their headers"
        if found.truncated:
            report.message += f"; {found.message}"
    log.info("%s", report.message)
    return report


def _unchanged(stored: Scene, item: Mapping[str, Any], source: DataSource, bands: list[str]) -> bool:
    """Whether ``stored`` still describes ``item``: same ``updated`` time and asset hrefs, and
    every requested band harvested (a band that failed before is read again)."""
    updated = (item.get("properties") or {}).get("updated")
    if not updated or stored.properties.get("updated") != updated:
        return False
    assets = item.get("assets") or {}
    for band in bands:
        have = stored.bands.get(band)
        asset = assets.get(source.band_map[band])
        if have is None or have.header is None or have.error or not isinstance(asset, Mapping):
            return False
        if source.asset_href(asset) != have.href:
            return False
    return True
