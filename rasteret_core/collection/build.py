"""Build a collection: search, harvest the headers, write one partition per UTC date."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.collection.freshness import changed_assets
from rasteret_core.collection.harvest import AssetFailure, harvest, item_failure, source_reader_options
from rasteret_core.collection.scene import Scene
from rasteret_core.collection.store import Collection, METADATA_FILE, parse_date, WriteResult
from rasteret_core.errors import ArgumentError, BuildError, CollectionExistsError
from rasteret_core.redact import redact_url
from rasteret_core.stac.search import search, SearchResult
from rasteret_core.stac.sources import DataSource
from rasteret_core.storage import resolve_root

log = logging.getLogger(__name__)

IF_EXISTS = ("error", "overwrite", "refresh")
"""What :func:`build_collection` does when a collection already exists at ``root``."""


@dataclass
class BuildReport:
    """What a build did: scenes written per date, failed assets, warnings, I/O counts.

    ``message`` says in words what happened, including why nothing was written.
    ``collection`` is ``None`` when nothing was written and none existed (an empty search).
    """

    collection: Collection | None
    search: SearchResult
    writes: list[WriteResult] = field(default_factory=list)
    failures: list[AssetFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    message: str = ""
    reused: int = 0
    """Scenes kept from the stored partition without reading their headers (unchanged items)."""
    pruned: list[str] = field(default_factory=list)
    """Stored items removed because ``prune`` was asked and the search no longer returns them."""

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

    def first_causes(self, limit: int = 3) -> list[str]:
        """The most frequent distinct header failures, with one example asset each."""
        counts: dict[str, list[AssetFailure]] = {}
        for f in self.failures:
            counts.setdefault(_cause(f.error), []).append(f)
        ranked = sorted(counts.items(), key=lambda kv: -len(kv[1]))[:limit]
        return [f"{cause} ({len(fs)} asset(s), e.g. {fs[0].item_id} {fs[0].band} at {fs[0].href})" for cause, fs in ranked]

    def __repr__(self) -> str:
        name = self.collection.name if self.collection else None
        return (f"BuildReport(collection={name!r}, scenes={self.scenes}, dates={len(self.dates)},"
                f" failures={len(self.failures)}, requests={self.stats.requests})")

    def as_dict(self) -> dict[str, Any]:
        """Plain values for logs and Dagster metadata."""
        return {
            "collection": self.collection.name if self.collection else None,
            "root": self.collection.root if self.collection else None,
            "scenes": self.scenes,
            "dates": [d.isoformat() for d in self.dates],
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "search_truncated": self.search.truncated,
            "reused_scenes": self.reused,
            "pruned": len(self.pruned),
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
    if_exists: str = "error",
    prune: bool = False,
) -> BuildReport:
    """Search ``data_source``, read every requested band's header, store one partition per date.

    Args:
        data_source: where the items come from.
        root: the collection's folder or ``s3://`` prefix.
        date_range: inclusive ``(start, end)`` dates of the search.
        bbox, intersects, cloud_cover_lt, platform, max_items, filter_mode: search filters.
        bands: band codes to harvest (default: all of the source's).
        reader_options, progress, name, storage_options: how to read headers, report
            progress, name the collection and reach its storage.
        if_exists: when a collection is already stored at ``root``: ``"error"`` (default)
            refuses; ``"refresh"`` merges what this search reads into the stored dates (per
            item and band: bands not asked for keep their headers, items the search no
            longer returns are kept) and keeps the other dates; ``"overwrite"`` replaces it
            (dates this search does not find are removed, only once the new dates are written).
        prune: with ``"refresh"``, remove stored items of the searched dates that the search
            no longer returns (``report.pruned`` lists them). An empty search never prunes.

    Returns:
        A :class:`BuildReport`. An empty search writes nothing (no empty collection is left
        behind; ``report.collection`` is the existing one, or ``None``) and says so in
        ``message``.

    Raises:
        CollectionExistsError: a collection exists at ``root`` and ``if_exists="error"``.
        BuildError: items were found but none of their headers could be read (the message
            names the first causes); nothing was written.
        ValueError: unknown bands or ``if_exists`` value.
    """
    if if_exists not in IF_EXISTS:
        raise ArgumentError(f"if_exists must be one of {', '.join(IF_EXISTS)}, not {if_exists!r}")
    existing = _existing(root, storage_options)
    if existing is not None and if_exists == "error":
        raise CollectionExistsError(
            f"a collection already exists at {existing.root} ({len(existing.dates())} dates);"
            " pass overwrite=True (if_exists='overwrite') to replace it, refresh=True (if_exists='refresh')"
            " to add or refresh dates, or open it with Rasteret.load_collection"
        )
    return _build(
        data_source, root=root, date_range=date_range, bbox=bbox, intersects=intersects,
        cloud_cover_lt=cloud_cover_lt, platform=platform, bands=bands, max_items=max_items,
        reader_options=reader_options, progress=progress, name=name, storage_options=storage_options,
        filter_mode=filter_mode, only_date=None, existing=existing, overwrite=if_exists == "overwrite",
        prune=prune,
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
    prune: bool = False,
) -> BuildReport:
    """Refresh the partition of one UTC ``date`` with today's search, merged into what is stored.

    Idempotent (a daily partition job can re-run it). Nothing is dropped that was not re-read:
    bands not asked for keep their stored headers; items the search no longer returns stay
    unless ``prune``; an empty search keeps the stored partition and says so in
    ``report.warnings``. With ``reuse_unchanged`` (the default), a stored scene whose item has
    the same STAC ``updated`` time and asset hrefs, and whose requested bands all have a
    header, is kept as stored: a refresh of an unchanged date costs the search, zero header
    requests and one 1-byte version check per stored file (a file replaced under the same
    href has its item read again). Items without ``updated`` are always re-read.

    Raises:
        BuildError: items were found but none of their headers could be read; the date's
            previous partition is left as it was.
    """
    day = parse_date(date)
    return _build(
        data_source, root=root, date_range=(day, day), bbox=bbox, intersects=intersects,
        cloud_cover_lt=cloud_cover_lt, platform=platform, bands=bands, max_items=max_items,
        reader_options=reader_options, progress=progress, name=name, storage_options=storage_options,
        filter_mode=filter_mode, only_date=day, existing=None, overwrite=False, reuse_unchanged=reuse_unchanged,
        prune=prune,
    )


def _build(
    source: DataSource, *, root: str | Path, date_range: tuple[Any, Any], bbox: Any, intersects: Any,
    cloud_cover_lt: float | None, platform: Any, bands: list[str] | None, max_items: int | None,
    reader_options: Any, progress: bool, name: str | None, storage_options: dict[str, Any] | None,
    filter_mode: str, only_date: dt.date | None, existing: Collection | None, overwrite: bool,
    reuse_unchanged: bool = False, prune: bool = False,
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
    report = BuildReport(collection=existing, search=found)
    if found.empty:  # a bad minute of the STAC API must not erase history: nothing is removed
        report.failures = [item_failure(err) for err in found.rejected]
        stored = existing
        if only_date is not None:  # a date's job leaves a collection to query, as a build of items would
            stored = Collection.create(root, name=name, data_source=source, bands=bands,
                                       storage_options=storage_options)
        report.collection = stored
        kept = [d for d in (stored.dates() if stored else []) if only_date is None or d == only_date]
        report.message = found.message + (f"; the collection at {stored.root} is unchanged" if stored else
                                          "; no collection was written")
        if kept and only_date is not None:
            report.warnings.append(f"the search returned no items for {only_date}; its stored partition is kept"
                                   " (remove it with Collection.delete_date, or rebuild with overwrite)")
            log.warning("%s", report.warnings[-1])
        log.info("%s", report.message)
        return report
    kept: dict[str, Scene] = {}
    stored_collection = _existing(root, storage_options) if only_date is not None and reuse_unchanged else None
    if stored_collection is not None and only_date in stored_collection.dates():
        stored = {s.id: s for s in stored_collection.scenes(date_range=(only_date, only_date))}
        kept = {item["id"]: stored[item["id"]] for item in found.items
                if item.get("id") in stored and _unchanged(stored[item["id"]], item, source, bands)}
    # a file replaced under the same href since its header was stored: the item is read again
    checks = ReadStats()  # the version checks (one 1-byte request per file) count as the build's requests
    replaced = changed_assets(kept.values(), source_reader_options(source, reader_options), bands=bands, stats=checks)
    kept = {i: s for i, s in kept.items() if not any(scene_id == i for scene_id, _ in replaced)}
    to_read = [item for item in found.items if item.get("id") not in kept]
    # searched items are third-party input: only the locations the source may point at
    harvested = harvest(to_read, source, bands=bands, reader_options=source_reader_options(source, reader_options),
                        progress=progress, stats=checks)
    report.failures = [item_failure(err) for err in found.rejected] + harvested.failures
    report.warnings, report.stats = harvested.warnings, harvested.stats
    report.reused = len(kept)
    if harvested.scenes and not any(a.header is not None for sc in harvested.scenes for a in sc.bands.values()):
        report.message = (f"none of the {len(harvested.failures)} COG headers of {len(harvested.scenes)} items could be"
                          " read, nothing was written; first causes: " + "; ".join(report.first_causes()))
        raise BuildError(report.message, report)

    collection = Collection.create(
        root, name=name, data_source=source, bands=bands, storage_options=storage_options,
        extra={"search": parameters} if only_date is None else None,
    )
    report.collection = collection

    by_date: dict[dt.date, dict[str, Scene]] = {}
    for scene in [*kept.values(), *harvested.scenes]:
        day = scene.datetime.astimezone(dt.timezone.utc).date()
        by_date.setdefault(day, {})[scene.id] = scene  # a repeated id keeps its last copy
    if only_date is not None:
        by_date = {only_date: by_date.get(only_date, {})}
    for day in sorted(by_date):
        scenes = list(by_date[day].values())
        if overwrite:
            report.writes.append(collection.write_date(day, scenes))
        else:
            written = collection.merge_date(day, scenes, read_bands=bands, prune=prune)
            report.writes.append(written)
            report.pruned += list(written.pruned)
            report.warnings += [f"{what}: the new header read failed, the stored header is kept"
                                for what in written.kept_headers]
    if overwrite:  # only now that the new dates are stored: the old ones go
        for day in collection.dates():
            if day not in by_date:
                collection.delete_date(day)
        if collection.bands != bands:
            collection._save_metadata(bands=bands, replace_bands=True)

    if found.empty:
        report.message = found.message
    else:
        report.message = (
            f"{report.scenes} scenes on {len(report.dates)} dates written to {collection.root};"
            f" {len(report.failures)} asset headers failed, {len(report.warnings)} STAC/header warnings,"
            f" {report.stats.requests} requests, {report.stats.bytes_fetched} bytes"
        )
        if found.truncated:
            report.message += f"; {found.message}"
        if report.reused:
            report.message += f"; {report.reused} unchanged scenes kept without reading their headers"
        if report.pruned:
            report.message += f"; pruned {len(report.pruned)} items the search no longer returns: " + ", ".join(
                report.pruned[:10]) + (" ..." if len(report.pruned) > 10 else "")
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
        if redact_url(source.asset_href(asset) or "") != have.href:  # stored hrefs carry no signature
            return False
    return True


def _existing(root: str | Path, storage_options: dict[str, Any] | None) -> Collection | None:
    """The collection stored at ``root``, if any."""
    import pyarrow.fs as pafs

    _, fs, path = resolve_root(root, storage_options)
    if fs.get_file_info(f"{path}/{METADATA_FILE}").type != pafs.FileType.File:
        return None
    return Collection.open(root, storage_options=storage_options)


def _cause(error: str) -> str:
    head, sep, rest = error.partition(": ")
    return rest if sep and ("://" in head or head.startswith("/")) else error
