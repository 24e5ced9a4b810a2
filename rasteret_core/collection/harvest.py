"""Header harvest: turn STAC items into :class:`Scene` values with each band's parsed COG header.

All headers of a harvest go through ONE :class:`CogClient` (one connection pool) with at most
``max_concurrency`` requests in flight; a GDAL COG costs one request. A failing asset (404,
truncated file, not a TIFF, missing asset key) is recorded on its :class:`BandAsset`
(``error = "<ErrorType>: message"``) and in :attr:`HarvestResult.failures`; the other assets
carry on. Each header records its file's validator (ETag, else Last-Modified and size, from
the same response), so later tile reads fail as stale instead of decoding a replaced file
(see :mod:`rasteret_core.collection.freshness`). STAC ``proj:shape``, ``proj:transform`` and
``proj:epsg``/``proj:code`` are compared with the header and disagreements listed in
:attr:`HarvestResult.warnings`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from rasteret_core import radiometry
from rasteret_core.cog import CogClient, CogHeader, ReaderOptions, ReadStats
from rasteret_core.cog.azure import planetary_computer_signer
from rasteret_core.cog.reader import run_sync
from rasteret_core.cog.urls import source_locations
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.collection.schema import ASSETS_PROPERTY
from rasteret_core.errors import ArgumentError, InvalidItemError
from rasteret_core.progress import Progress
from rasteret_core.redact import redact_hrefs, redact_url
from rasteret_core.stac.local_items import item_datetime_range, item_geometry
from rasteret_core.stac.sources import DataSource
from rasteret_core.stac.validate import split_valid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssetFailure:
    """One asset whose header could not be read."""

    item_id: str
    band: str
    href: str
    error: str


@dataclass
class HarvestResult:
    """Scenes with their headers, the failed assets, STAC/header disagreements and I/O counts."""

    scenes: list[Scene]
    failures: list[AssetFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)

    @property
    def assets(self) -> int:
        return sum(len(s.bands) for s in self.scenes)

    def summary(self) -> str:
        """One line: scenes, headers read, failures, warnings, requests and bytes."""
        return (
            f"{len(self.scenes)} scenes, {self.assets - len(self.failures)}/{self.assets} headers read,"
            f" {len(self.failures)} failed, {len(self.warnings)} warnings,"
            f" {self.stats.requests} requests, {self.stats.bytes_fetched} bytes"
        )


def reader_options_for(source: DataSource, reader_options: ReaderOptions | Mapping[str, Any] | None) -> ReaderOptions:
    """``reader_options`` with what ``source`` needs: requester-pays when it or the caller asks,
    and its read-time signer (Planetary Computer SAS tokens) unless the caller gave one."""
    base = ReaderOptions.coerce(reader_options)
    base = replace(base, requester_pays=base.requester_pays or source.requester_pays)
    return with_source_signer(source, base)


def with_source_signer(source: DataSource, options: ReaderOptions) -> ReaderOptions:
    """``options`` with ``source``'s read-time signer, unless they already carry one."""
    if source.signing == "planetary-computer" and options.signer is None:
        return replace(options, signer=planetary_computer_signer())
    return options


def source_reader_options(source: DataSource, reader_options: ReaderOptions | Mapping[str, Any] | None) -> ReaderOptions:
    """:func:`reader_options_for`, limited to the locations ``source``'s items may point at
    (:func:`rasteret_core.cog.urls.source_locations`): items of a remote STAC API never open
    local files; a local items file's only inside its folder or the caller's ``local_roots``.
    Builds and the pipelines read searched items with these; :func:`harvest` of items the
    caller passes in uses the caller's options as they are."""
    base = reader_options_for(source, reader_options)
    schemes, roots = source_locations(source.items_path, schemes=base.allowed_schemes, local_roots=base.local_roots)
    return replace(base, allowed_schemes=schemes, local_roots=roots)


def collection_reader_options(source: DataSource | None, reader_options: ReaderOptions | Mapping[str, Any] | None, *,
                              root: str) -> ReaderOptions:
    """Options for reading the tiles of a stored collection at ``root``.

    A stored collection is third-party input (a teammate's, or one on a shared bucket): its
    hrefs get the policy of :func:`source_reader_options`. Its data source is stored too, so a
    local items folder is trusted as a root only for a collection that is itself local; a
    remote collection never names local files unless the caller's ``local_roots`` allow them.
    """
    base = reader_options_for(source, reader_options) if source is not None else ReaderOptions.coerce(reader_options)
    local_root = "://" not in str(root) or str(root).startswith("file://")
    items = source.items_path if source is not None and local_root else None
    schemes, roots = source_locations(items, schemes=base.allowed_schemes, local_roots=base.local_roots)
    return replace(base, allowed_schemes=schemes, local_roots=roots)


async def aharvest(
    items: Iterable[Any],
    source: DataSource,
    *,
    bands: list[str] | None = None,
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    client: CogClient | None = None,
    stats: ReadStats | None = None,
    progress: bool = True,
) -> HarvestResult:
    """Read the header of every requested band of every item (dicts or pystac Items).

    ``bands`` defaults to all of the source's bands (``ValueError`` for unknown codes).
    ``client`` lets several harvests share one pool; otherwise one is opened with
    ``reader_options`` (requester-pays taken from ``source``).
    """
    bands = source.check_bands(bands)
    # malformed items are failures naming the item and the field; the others are harvested
    items, rejected = split_valid([_as_dict(item) for item in items], cloud_cover_property=source.cloud_cover_property,
                                  asset_keys=[source.band_map[b] for b in bands])
    stats = stats if stats is not None else ReadStats()
    if client is None:
        async with CogClient(reader_options_for(source, reader_options)) as own:
            result = await _harvest(items, source, bands, own, stats, progress)
    else:
        result = await _harvest(items, source, bands, client, stats, progress)
    result.failures[:0] = [item_failure(err) for err in rejected]
    return result


def item_failure(err: InvalidItemError) -> AssetFailure:
    """The failure recorded for a malformed item (``band`` is ``"item"``)."""
    return AssetFailure(err.item_id, "item", "", f"InvalidItemError: {err}")


def harvest(items: Iterable[Any], source: DataSource, **kwargs: Any) -> HarvestResult:
    """Synchronous :func:`aharvest`."""
    items = list(items)
    return run_sync(lambda: aharvest(items, source, **kwargs))


async def _harvest(
    items: list[dict[str, Any]], source: DataSource, bands: list[str], client: CogClient,
    stats: ReadStats, progress: bool,
) -> HarvestResult:
    jobs: list[tuple[int, str, str | None, Mapping[str, Any] | None]] = []
    for i, item in enumerate(items):
        for band in bands:
            asset = (item.get("assets") or {}).get(source.band_map[band])
            href = source.asset_href(asset) if isinstance(asset, Mapping) else None
            refused = source.band_problem(item, band)
            jobs.append((i, band, href, refused or asset))

    limit = asyncio.Semaphore(client.options.max_concurrency)
    headers: dict[tuple[int, str], CogHeader | str] = {}
    # one request per COG even when several band codes name the same asset (Landsat's B4 and red)
    by_href: dict[str, asyncio.Task] = {}

    async def fetch(href: str) -> CogHeader | str:
        async with limit:
            try:
                return await client.header(href, stats=stats)
            except Exception as exc:  # noqa: BLE001 - recorded per asset, never fatal
                return f"{type(exc).__name__}: {exc}"
    with Progress(len(jobs), f"COG headers ({source.name})", enabled=progress, unit="headers") as bar:
        failed = 0

        async def one(i: int, band: str, href: str | None, asset: Any) -> None:
            nonlocal failed
            if isinstance(asset, str):  # the band code is refused for this item
                headers[(i, band)] = asset
            elif href is None:
                key = source.band_map[band]
                reason = "has no asset" if asset is None else "asset has no href"
                headers[(i, band)] = f"MissingAssetError: item {items[i].get('id')!r} {reason} {key!r} (band {band})"
            else:
                if href not in by_href:
                    by_href[href] = asyncio.ensure_future(fetch(href))
                headers[(i, band)] = await by_href[href]
            if isinstance(headers[(i, band)], str):
                failed += 1
                bar.set_postfix(failed=failed)
            bar.update()

        await asyncio.gather(*(one(*job) for job in jobs))

    result = HarvestResult(scenes=[], stats=stats)
    for i, item in enumerate(items):
        scene_bands: dict[str, BandAsset] = {}
        for band in bands:
            asset = (item.get("assets") or {}).get(source.band_map[band])
            asset = asset if isinstance(asset, Mapping) else {}
            href = redact_url(source.asset_href(asset) or "")  # stored: never a signature or token
            got = headers[(i, band)]
            rad = radiometry.decide(item, source.band_map[band], asset, override=source.radiometry.get(band))
            extra = (rad.scale, rad.offset, rad.rule, rad.reason)
            if isinstance(got, CogHeader):
                scene_bands[band] = BandAsset(band, href, got, None, *extra)
                result.warnings.extend(compare_proj(item, asset, band, got))
            else:
                scene_bands[band] = BandAsset(band, href, None, got, *extra)
                result.failures.append(AssetFailure(str(item.get("id")), band, href, got))
        result.scenes.append(item_to_scene(item, source, scene_bands))

    if result.failures:
        shown = "; ".join(f"{f.item_id}/{f.band}: {f.error}" for f in result.failures[:5])
        more = f" (+{len(result.failures) - 5} more)" if len(result.failures) > 5 else ""
        log.warning("%s: %d asset header(s) failed: %s%s", source.name, len(result.failures), shown, more)
    for warning in result.warnings[:20]:
        log.warning("%s", warning)
    log.info("harvest %s: %s", source.name, result.summary())
    return result


def item_to_scene(item: Mapping[str, Any], source: DataSource, bands: dict[str, BandAsset]) -> Scene:
    """A :class:`Scene` for ``item`` holding ``bands``; the full assets go in properties."""
    span = item_datetime_range(item)
    if span is None:
        raise ArgumentError(f"item {item.get('id')!r} has no datetime")
    geometry = item_geometry(item)
    if geometry is None:
        raise ArgumentError(f"item {item.get('id')!r} has no geometry or bbox")
    props = dict(item.get("properties") or {})
    cloud = props.get(source.cloud_cover_property)
    props[ASSETS_PROPERTY] = redact_hrefs(item.get("assets") or {})
    return Scene(
        id=str(item["id"]),
        collection=item.get("collection") or source.collection or "",
        datetime=span[0],
        geometry=geometry,
        cloud_cover=float(cloud) if isinstance(cloud, (int, float)) and not isinstance(cloud, bool) else None,
        bands=bands,
        properties=props,
        requester_pays=source.requester_pays,
    )


def compare_proj(item: Mapping[str, Any], asset: Mapping[str, Any], band: str, header: CogHeader) -> list[str]:
    """Disagreements between the STAC ``proj:*`` values of an asset (or item) and its header."""
    props = item.get("properties") or {}
    where = f"{item.get('id')}/{band}"

    def value(key: str) -> Any:
        return asset.get(key) if asset.get(key) is not None else props.get(key)

    out = []
    shape = value("proj:shape")
    if isinstance(shape, (list, tuple)) and len(shape) == 2 and tuple(int(v) for v in shape) != header.shape:
        out.append(f"{where}: STAC proj:shape {list(shape)} != header shape {list(header.shape)}")
    transform = value("proj:transform")
    if isinstance(transform, (list, tuple)) and len(transform) >= 6:
        stac = [float(v) for v in transform[:6]]
        if not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6) for a, b in zip(stac, header.transform)):
            out.append(f"{where}: STAC proj:transform {stac} != header transform {list(header.transform)}")
    epsg = value("proj:epsg")
    code = value("proj:code")
    if epsg is None and isinstance(code, str) and code.upper().startswith("EPSG:"):
        epsg = code.split(":", 1)[1]
    if epsg is not None and header.crs_epsg is not None:
        try:
            if int(epsg) != header.crs_epsg:
                out.append(f"{where}: STAC EPSG {int(epsg)} != header EPSG {header.crs_epsg}")
        except (TypeError, ValueError):
            out.append(f"{where}: STAC proj:epsg {epsg!r} is not an EPSG code")
    return out


def _as_dict(item: Any) -> Any:
    if isinstance(item, Mapping):
        return dict(item)
    to_dict = getattr(item, "to_dict", None)
    if to_dict is None:
        return item  # not an item: validation records it
    return to_dict(transform_hrefs=False) if _accepts_transform(to_dict) else to_dict()


def _accepts_transform(fn: Any) -> bool:
    try:
        import inspect

        return "transform_hrefs" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False

