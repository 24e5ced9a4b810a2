"""Read AOIs from a collection's scenes: stored headers -> windows -> concurrent tile reads -> clip.

No header is requested: every window comes from the header stored in the collection. All
windows of a call go through one ``CogClient`` (one connection pool), in batches so memory
stays bounded by the result plus a bounded number of tiles in flight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from affine import Affine
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import CogClient, CogError, ReaderOptions, ReadStats
from rasteret_core.cog.reader import run_sync
from rasteret_core.collection.scene import Scene
from rasteret_core.progress import Progress
from rasteret_core.read.geometry import to_crs
from rasteret_core.read.windows import AoiWindow, aoi_window


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

    def __repr__(self) -> str:
        return (f"AoiReadResult(rasters={len(self.rasters)}, failures={len(self.failures)},"
                f" requests={self.stats.requests}, bytes={self.stats.bytes_fetched})")


@dataclass
class _Job:
    scene: Scene
    band: str
    geometry_id: str
    crop: AoiWindow


def plan_reads(scenes: Iterable[Scene], geometries: Mapping[str, BaseGeometry], bands: list[str],
               result: AoiReadResult) -> list[_Job]:
    """One job per (scene, band, geometry) whose geometry overlaps the scene's image."""
    jobs: list[_Job] = []
    reprojected: dict[tuple[str, int], BaseGeometry] = {}
    for scene in scenes:
        for band in bands:
            asset = scene.bands.get(band)
            if asset is None or asset.header is None:
                why = asset.error if asset is not None else "no usable header stored for this band (harvest failed or no such asset)"
                result.failures.append(ReadFailure(scene.id, band, None, why or "no header"))
                continue
            header = asset.header
            if header.crs_epsg is None:
                result.failures.append(ReadFailure(scene.id, band, None, "the image has no EPSG CRS"))
                continue
            for gid, geom in geometries.items():
                key = (gid, header.crs_epsg)
                if key not in reprojected:
                    reprojected[key] = to_crs(geom, header.crs_epsg)
                crop = aoi_window(header, reprojected[key])
                if crop is not None:
                    jobs.append(_Job(scene, band, gid, crop))
    return jobs


def job_batches(jobs: list[_Job], batch_size: int) -> Iterable[list[_Job]]:
    """The read calls of an AOI read (a plan counts requests per call, as the read makes them)."""
    for start in range(0, len(jobs), batch_size):
        yield jobs[start : start + batch_size]


async def aread_aois(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    bands: list[str],
    *,
    client: CogClient | None = None,
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    progress: bool = False,
    batch_size: int = 256,
    fill_outside: bool = True,
) -> AoiReadResult:
    """Clip every band of every scene to every AOI (EPSG:4326 polygons keyed by id).

    A scene/band whose header failed at harvest, or whose tiles fail to read, is reported in
    ``failures`` and the others still return. ``stats`` counts requests and bytes.
    With ``fill_outside=False`` pixels outside the AOI keep their values (``outside`` still
    marks them), e.g. for masks resampled onto another band's grid.
    """
    result = AoiReadResult(stats=stats if stats is not None else ReadStats())
    jobs = plan_reads(scenes, geometries, bands, result)
    if client is None:
        async with CogClient(reader_options or ReaderOptions()) as own:
            await _run(jobs, own, result, progress, batch_size, fill_outside)
    else:
        await _run(jobs, client, result, progress, batch_size, fill_outside)
    return result


def read_aois(scenes: Iterable[Scene], geometries: Mapping[str, BaseGeometry], bands: list[str], **kwargs: Any) -> AoiReadResult:
    """Synchronous :func:`aread_aois`."""
    scenes = list(scenes)
    return run_sync(lambda: aread_aois(scenes, geometries, bands, **kwargs))


async def _run(jobs: list[_Job], client: CogClient, result: AoiReadResult, progress: bool, batch_size: int,
               fill_outside: bool) -> None:
    with Progress(len(jobs), "reading AOIs", enabled=progress, unit="window") as bar:
        for batch in job_batches(jobs, batch_size):
            arrays = await client.read_windows(
                [(j.scene.bands[j.band].header, j.crop.window) for j in batch],
                stats=result.stats, return_exceptions=True,
            )
            for job, array in zip(batch, arrays):
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
                ))
            bar.update(len(batch))
