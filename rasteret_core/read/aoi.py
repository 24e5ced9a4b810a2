"""Read AOIs from a collection's scenes: stored headers -> windows -> concurrent tile reads -> clip.

No header is requested: every window comes from the header stored in the collection. All
windows of a call go through one ``CogClient`` (one connection pool), in batches so memory
stays bounded by the result plus a bounded number of tiles in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
from affine import Affine
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import CogClient, CogError, ReaderOptions, ReadStats
from rasteret_core.cog.reader import run_sync
from rasteret_core.collection.scene import Scene
from rasteret_core.progress import Progress
from rasteret_core.raster.geometry import to_crs
from rasteret_core.raster.windows import aoi_window, AoiWindow


@dataclass
class AoiRaster:
    """One band of one scene clipped to one AOI, as ``rasterio.mask.mask(crop=True)`` gives it.

    Pixels outside the AOI hold ``fill`` (the band's nodata, or 0 when it has none).
    """

    geometry_id: str
    scene_id: str
    datetime: dt.datetime
    band: str
    data: np.ndarray
    transform: Affine
    crs_epsg: int | None
    nodata: float | None
    outside: np.ndarray
    scale: float | None = None
    offset: float | None = None
    crs_wkt: str | None = None
    """The CRS as WKT when it has no EPSG code (``crs_epsg`` is then ``None``)."""

    @property
    def crs(self) -> str:
        """``"EPSG:n"``, or the WKT of a CRS without a code."""
        return f"EPSG:{self.crs_epsg}" if self.crs_epsg is not None else self.crs_wkt or ""

    @property
    def fill(self) -> float:
        return self.nodata if self.nodata is not None else 0


@dataclass
class ReadFailure:
    """One scene/band (and geometry, when the read was planned) that could not be read, and why."""

    scene_id: str
    band: str
    geometry_id: str | None
    error: str


@dataclass
class AoiReadResult:
    """Rasters read, failures with their causes, I/O counts and (from the high-level API) the
    step-by-step ``diagnosis`` (:class:`rasteret_core.read.diagnosis.ReadDiagnosis`)."""

    rasters: list[AoiRaster] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    diagnosis: Any = None
    scenes: list[Scene] = field(default_factory=list)
    """The scenes the read selected (what a mosaic needs beside the rasters)."""
    geometries: dict[str, BaseGeometry] = field(default_factory=dict)
    """The geometries read, by id, in lon/lat."""

    def __repr__(self) -> str:
        return (f"AoiReadResult(rasters={len(self.rasters)}, failures={len(self.failures)},"
                f" requests={self.stats.requests}, bytes={self.stats.bytes_fetched})")


@dataclass
class _Job:
    scene: Scene
    band: str
    geometry_id: str
    crop: AoiWindow


def _grid_key(header) -> tuple:
    """What a window depends on besides the geometry: the image grid (same for every date of a tile)."""
    return (header.crs, tuple(header.transform), header.width, header.height)


class _WindowCache:
    """AOI windows computed once per (image grid, geometry) and shared by every scene on that grid.

    The shared ``outside`` masks are made read-only, so no caller can change one date's mask
    through another's.
    """

    def __init__(self, geometries: Mapping[str, BaseGeometry], max_pixels: int) -> None:
        self.geometries = geometries
        self.max_pixels = max_pixels
        self._reprojected: dict[tuple[str, str], BaseGeometry] = {}
        self._windows: dict[tuple, AoiWindow | None] = {}

    def get(self, header, gid: str) -> AoiWindow | None:
        """The crop of ``gid`` on ``header``'s grid; raises :class:`CogError` (naming this
        header's URL, so errors are not cached) when the window cannot be placed or is too large."""
        key = (_grid_key(header), gid)
        if key not in self._windows:
            geo_key = (gid, header.crs)
            if geo_key not in self._reprojected:
                self._reprojected[geo_key] = to_crs(self.geometries[gid], header.crs)
            crop = aoi_window(header, self._reprojected[geo_key], max_pixels=self.max_pixels)
            if crop is not None:
                crop.outside.flags.writeable = False
            self._windows[key] = crop
        return self._windows[key]


def _plan_scene(scene: Scene, bands: list[str], cache: _WindowCache, result: AoiReadResult) -> list[_Job]:
    jobs: list[_Job] = []
    for band in bands:
        asset = scene.bands.get(band)
        if asset is None or asset.header is None:
            why = asset.error if asset is not None else "no usable header stored for this band (harvest failed or no such asset)"
            result.failures.append(ReadFailure(scene.id, band, None, why or "no header"))
            continue
        header = asset.header
        if header.crs is None:
            result.failures.append(ReadFailure(scene.id, band, None, "the image has no CRS (no GeoKeys GDAL can read)"))
            continue
        for gid in cache.geometries:
            try:
                crop = cache.get(header, gid)
            except CogError as exc:
                result.failures.append(ReadFailure(scene.id, band, gid, str(exc)))
                continue
            if crop is not None:
                jobs.append(_Job(scene, band, gid, crop))
    return jobs


def iter_planned(scenes: Iterable[Scene], geometries: Mapping[str, BaseGeometry], bands: list[str],
                 result: AoiReadResult, *, max_pixels: int = ReaderOptions.max_window_pixels) -> Iterator[list[_Job]]:
    """The jobs of :func:`read_jobs`, one scene at a time (all its bands and geometries)."""
    cache = _WindowCache(geometries, max_pixels)
    for scene in scenes:
        yield _plan_scene(scene, bands, cache, result)


def read_jobs(scenes: Iterable[Scene], geometries: Mapping[str, BaseGeometry], bands: list[str],
               result: AoiReadResult, *, max_pixels: int = ReaderOptions.max_window_pixels) -> list[_Job]:
    """One job per (scene, band, geometry) whose geometry overlaps the scene's image; a window
    that cannot be placed or is larger than ``max_pixels`` is a failure of that job.

    Windows and masks are computed once per (image grid, geometry) and shared by every date
    on that grid. Failed or unusable bands are appended to ``result.failures``.
    """
    return [job for jobs in iter_planned(scenes, geometries, bands, result, max_pixels=max_pixels) for job in jobs]


def job_batches(jobs: list[_Job], batch_size: int) -> Iterable[list[_Job]]:
    """The read calls of an AOI read (a plan counts requests per call, as the read makes them)."""
    return _batches((list(group) for _, group in itertools.groupby(jobs, key=lambda j: id(j.scene))), batch_size)


def _batches(planned: Iterable[list[_Job]], batch_size: int) -> Iterator[list[_Job]]:
    """Whole scenes per read call: the first call small so its requests leave while the rest is
    planned, then calls of at least ``batch_size`` windows."""
    first, size = max(1, min(batch_size, 16)), max(1, batch_size)
    batch: list[_Job] = []
    calls = 0
    for jobs in planned:
        batch.extend(jobs)
        if len(batch) >= (size if calls else first):
            yield batch
            batch, calls = [], calls + 1
    if batch:
        yield batch


async def aread_aois(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    bands: list[str],
    *,
    client: CogClient | None = None,
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    progress: bool = False,
    batch_size: int = 64,
    fill_outside: bool = True,
) -> AoiReadResult:
    """Clip every band of every scene to every AOI (EPSG:4326 polygons keyed by id).

    A scene/band whose header failed at harvest, or whose tiles fail to read, is reported in
    ``failures`` and the others still return. ``stats`` counts requests and bytes.
    With ``fill_outside=False`` pixels outside the AOI keep their values (``outside`` still
    marks them), e.g. for masks resampled onto another band's grid.
    """
    result = AoiReadResult(stats=stats if stats is not None else ReadStats())
    options = client.options if client is not None else reader_options or ReaderOptions()
    planned = iter_planned(scenes, geometries, bands, result, max_pixels=options.max_window_pixels)
    if client is None:
        async with CogClient(reader_options or ReaderOptions()) as own:
            await _run(planned, own, result, progress, batch_size, fill_outside)
    else:
        await _run(planned, client, result, progress, batch_size, fill_outside)
    return result


def recording(scenes: Iterable[Scene]) -> tuple[list[Scene], Iterator[Scene]]:
    """``(seen, stream)``: ``seen`` fills as ``stream`` is consumed. Pass ``stream`` to
    :func:`read_aois` so a collection scan (:meth:`Collection.iter_scenes`) overlaps the first
    reads, and use ``seen`` (every scene read, in order) once the read returns."""
    seen: list[Scene] = []

    def stream() -> Iterator[Scene]:
        for scene in scenes:
            seen.append(scene)
            yield scene

    return seen, stream()


def read_aois(scenes: Iterable[Scene], geometries: Mapping[str, BaseGeometry], bands: list[str], **kwargs: Any) -> AoiReadResult:
    """Synchronous :func:`aread_aois`. ``scenes`` may be an iterator such as
    :meth:`Collection.iter_scenes`: reads start while it is still being consumed."""
    return run_sync(lambda: aread_aois(scenes, geometries, bands, **kwargs))


async def _run(planned: Iterator[list[_Job]], client: CogClient, result: AoiReadResult, progress: bool,
               batch_size: int, fill_outside: bool) -> None:
    """Read the planned jobs, in batches of whole scenes that start fetching as soon as planned.

    A batch holds every band and geometry of its scenes, so tiles shared by several AOIs of a
    file are fetched once and neighbours merged. Batches run concurrently; the client's
    in-flight byte budget and connection limit bound them all together.
    """
    if progress:
        chunks = list(planned)  # a known total for the bar
        total: int | None = sum(len(c) for c in chunks)
        planned = iter(chunks)
    else:
        total = None
    pending = _batches(planned, batch_size)
    with Progress(total, "reading AOIs", enabled=progress, unit="window") as bar:

        async def read(batch: list[_Job]) -> list:
            arrays = await client.read_windows(
                [(j.scene.bands[j.band].header, j.crop.window) for j in batch],
                stats=result.stats, return_exceptions=True,
            )
            bar.update(len(batch))
            return arrays

        tasks: list[asyncio.Task] = []
        batches: list[list[_Job]] = []
        async with asyncio.TaskGroup() as group:
            # planning (and a streamed collection scan behind it) runs in a thread, so the event
            # loop keeps sending requests and receiving bytes meanwhile
            while (batch := await asyncio.to_thread(next, pending, None)) is not None:
                batches.append(batch)
                tasks.append(group.create_task(read(batch)))
    for batch, task in zip(batches, tasks):
        for job, array in zip(batch, task.result()):
            asset = job.scene.bands[job.band]
            if isinstance(array, CogError):
                result.failures.append(ReadFailure(job.scene.id, job.band, job.geometry_id, str(array)))
                continue
            data = array[0]
            if fill_outside:
                fill = asset.header.nodata if asset.header.nodata is not None else 0
                data[job.crop.outside] = np.array(fill).astype(data.dtype)
            result.rasters.append(AoiRaster(
                job.geometry_id, job.scene.id, job.scene.datetime, job.band, data, job.crop.transform,
                asset.header.crs_epsg, asset.header.nodata, job.crop.outside, asset.scale, asset.offset,
                crs_wkt=asset.header.crs_wkt if asset.header.crs_epsg is None else None,
            ))
