"""Point samples: band values at points for every scene, through the stored headers.

No header is requested: each point's pixel comes from the header stored in the collection.
All windows of a call go through one ``CogClient.read_windows``, which fetches every tile
once and pastes it into every window that needs it, so points sharing a tile share one fetch.

Three ways to sample (one per call):

- default: the pixel containing the point, as ``rasterio``'s ``DatasetReader.sample`` gives it;
- ``neighbourhood=k`` (odd): every pixel of the ``k x k`` block centred on that pixel;
- ``max_distance=d``: the valid pixel (not nodata, not NaN) whose centre is nearest to the
  point, at most ``d`` away in the image CRS's units (metres for UTM); ties go to the first
  pixel in row-major order.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
from affine import Affine
from rasterio.windows import Window

from rasteret_core import radiometry
from rasteret_core.cog import CogClient, CogError, CogHeader, ReaderOptions, ReadStats
from rasteret_core.cog.reader import run_sync
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import ArgumentError, GeometryError
from rasteret_core.raster.geometry import id_column
from rasteret_core.read.aoi import ReadFailure

MAX_NEIGHBOURHOOD = 101
"""Largest ``neighbourhood``: 10,201 rows per point, scene and band (99,999 asked for 4.19 M rows
and 1.7 GiB for one point)."""


SAMPLE_SCHEMA = pa.schema([
    ("point_id", pa.string()),
    ("datetime", pa.timestamp("us", tz="UTC")),
    ("scene_id", pa.string()),
    ("band", pa.string()),
    ("value", pa.float64()),
    ("valid", pa.bool_()),
    ("distance", pa.float64()),
    ("row", pa.int64()),
    ("col", pa.int64()),
    ("crs_epsg", pa.int32()),
    ("lon", pa.float64()),
    ("lat", pa.float64()),
])
"""The tidy table: one row per point x scene x band (x neighbourhood pixel).

``value`` is the raw pixel (or the physical value with ``physical=True``; nodata is then
null), ``valid`` says it is neither nodata nor NaN, ``distance`` is from the point to the
pixel centre in the image CRS's units, ``row``/``col`` index the pixel in the full image."""


@dataclass
class PointSamples:
    """The result of :func:`sample_points`: the tidy table, failures and I/O counts.

    ``notes`` says, when the table is empty, which step emptied it.
    """

    table: pa.Table
    failures: list[ReadFailure] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.table.num_rows

    def to_arrow(self) -> pa.Table:
        """The samples as an Arrow table (:data:`SAMPLE_SCHEMA`)."""
        return self.table

    def to_geodataframe(self):
        """The samples as a ``geopandas.GeoDataFrame`` with the points (EPSG:4326) as geometry."""
        import geopandas as gpd

        df = self.table.to_pandas()
        geometry = gpd.points_from_xy(df["lon"], df["lat"], crs="EPSG:4326")
        return gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")


def named_points(points: Any, crs: str | None = None) -> dict[str, tuple[float, float]]:
    """``{id: (lon, lat)}`` from a GeoDataFrame/GeoSeries of points (ids from a ``name``, then
    ``id`` column, else the index), a mapping of ids to points or ``(x, y)`` pairs, or a
    sequence of them (ids ``1..n``).

    ``crs`` is the CRS of plain coordinates (default EPSG:4326, ``(lon, lat)`` order).

    Raises:
        GeometryError: a geometry that is not a point, an empty input, or a latitude outside
            [-90, 90] (often a swapped ``(lat, lon)`` pair).
    """
    from shapely.geometry.base import BaseGeometry

    if hasattr(points, "geometry") and hasattr(points, "index"):  # GeoDataFrame / GeoSeries
        frame = points.to_crs(4326) if getattr(points, "crs", None) else points
        geoms = frame.geometry if hasattr(frame, "geometry") else frame
        column = id_column(getattr(frame, "columns", ()))  # the README's id rule: name, then id, else the index
        items = list(zip(frame[column] if column else frame.index, geoms))
        crs = None
    elif isinstance(points, Mapping):
        items = list(points.items())
    else:
        items = list(enumerate(points, start=1))
    if not items:
        raise GeometryError("no points given")
    ids, xs, ys = [], [], []
    for key, value in items:
        if isinstance(value, BaseGeometry) or hasattr(value, "__geo_interface__"):
            from shapely.geometry import shape

            geom = value if isinstance(value, BaseGeometry) else shape(value)
            if geom.geom_type != "Point" or geom.is_empty:
                raise GeometryError(f"point {key!r} is a {geom.geom_type}, not a point")
            x, y = geom.x, geom.y
        else:
            try:
                x, y = (float(v) for v in value)
            except (TypeError, ValueError):
                raise GeometryError(f"point {key!r} is not a point or an (x, y) pair: {value!r}") from None
        ids.append(str(key))
        xs.append(x)
        ys.append(y)
    if crs is not None and crs.upper() not in ("EPSG:4326", "OGC:CRS84"):
        from rasterio.warp import transform

        xs, ys = transform(crs, "EPSG:4326", xs, ys)
    for key, x, y in zip(ids, xs, ys):
        if not (math.isfinite(x) and math.isfinite(y) and -90 <= y <= 90 and -180 <= x <= 360):
            raise GeometryError(f"point {key!r} at ({x}, {y}) is not a lon/lat position (is it (lat, lon)?)")
    if len(set(ids)) != len(ids):
        raise GeometryError("point ids are not unique")
    return {k: (float(x), float(y)) for k, x, y in zip(ids, xs, ys)}


@dataclass
class _Job:
    scene: Scene
    band: str
    point_id: int  # index into the point arrays
    window: Window
    x: float  # the point in the image CRS
    y: float


def _window_half(header: CogHeader, neighbourhood: int, max_distance: float | None) -> int:
    if max_distance is None:
        return neighbourhood // 2
    a, b, _c, d, e, _f = header.transform[:6]
    pixel = min(math.hypot(a, d), math.hypot(b, e))
    # the disc of radius max_distance around the point, plus the pixel holding the point
    return int(math.ceil(max_distance / pixel)) + 1


def plan_point_windows(
    scenes: Iterable[Scene], lonlat: np.ndarray, bands: list[str], *,
    neighbourhood: int = 1, max_distance: float | None = None, failures: list[ReadFailure] | None = None,
) -> list[_Job]:
    """One window per (scene, band, point) whose pixel block overlaps the scene's image.

    ``lonlat`` is an ``(n, 2)`` array. Bands without a stored header go to ``failures``.
    """
    from rasterio.warp import transform

    jobs: list[_Job] = []
    projected: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for scene in scenes:
        for band in bands:
            asset = scene.bands.get(band)
            if asset is None or asset.header is None:
                if failures is not None:
                    why = asset.error if asset is not None else "band not in the collection"
                    failures.append(ReadFailure(scene.id, band, None, why or "no header"))
                continue
            header = asset.header
            crs = header.crs  # "EPSG:n", or the WKT of a CRS without a code
            if crs is None:
                if failures is not None:
                    failures.append(ReadFailure(scene.id, band, None, "the image has no CRS (no GeoKeys GDAL can read)"))
                continue
            if crs not in projected:
                xs, ys = transform("EPSG:4326", crs, lonlat[:, 0].tolist(), lonlat[:, 1].tolist())
                projected[crs] = (np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))
            xs, ys = projected[crs]
            inv = ~Affine(*header.transform[:6])
            cols = np.floor(inv.a * xs + inv.b * ys + inv.c).astype(np.int64)
            rows = np.floor(inv.d * xs + inv.e * ys + inv.f).astype(np.int64)
            half = _window_half(header, neighbourhood, max_distance)
            r0, r1 = np.maximum(rows - half, 0), np.minimum(rows + half + 1, header.height)
            c0, c1 = np.maximum(cols - half, 0), np.minimum(cols + half + 1, header.width)
            for i in np.nonzero((r0 < r1) & (c0 < c1))[0]:
                window = Window(int(c0[i]), int(r0[i]), int(c1[i] - c0[i]), int(r1[i] - r0[i]))
                jobs.append(_Job(scene, band, int(i), window, float(xs[i]), float(ys[i])))
    return jobs


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where a pixel holds data: not the nodata value and not NaN."""
    valid = np.ones(values.shape, dtype=bool)
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= values != nodata
    return valid


async def asample_points(
    scenes: Iterable[Scene],
    points: Any,
    bands: list[str],
    *,
    max_distance: float | None = None,
    neighbourhood: int = 1,
    physical: bool = False,
    crs: str | None = None,
    client: CogClient | None = None,
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    batch_windows: int = 50_000,
) -> PointSamples:
    """Values of ``bands`` at ``points`` in every scene of ``scenes``.

    Args:
        scenes: scenes with stored headers (``Collection.scenes(...)``).
        points: see :func:`named_points`.
        bands: band codes to sample.
        max_distance: nearest valid pixel within this distance (image CRS units).
        neighbourhood: odd ``k``: every pixel of the ``k x k`` block around the point's pixel.
        physical: physical values (``DN * scale + offset`` as decided at harvest, see
            :mod:`rasteret_core.radiometry`); nodata becomes null.
        crs: CRS of plain coordinate pairs (default lon/lat).
        batch_windows: windows per read call; a scene is never split over two calls, so its
            tiles are fetched once.

    Returns:
        :class:`PointSamples`; a point outside a scene's image has no row for that scene.

    Raises:
        ValueError: an even or non-positive ``neighbourhood``, a negative ``max_distance``,
            or both options at once.
        GeometryError: see :func:`named_points`.
    """
    if not isinstance(neighbourhood, (int, np.integer)) or neighbourhood < 1 or neighbourhood % 2 == 0 \
            or neighbourhood > MAX_NEIGHBOURHOOD:
        raise ArgumentError(f"neighbourhood must be an odd number from 1 to {MAX_NEIGHBOURHOOD}"
                            f" ({MAX_NEIGHBOURHOOD}^2 pixels per point and scene), got {neighbourhood!r}")
    if max_distance is not None and (not math.isfinite(max_distance) or max_distance < 0):
        raise ArgumentError(f"max_distance must be a finite distance >= 0, got {max_distance}")
    if max_distance is not None and neighbourhood != 1:
        raise ArgumentError("use either max_distance (nearest valid pixel) or neighbourhood, not both")
    named = named_points(points, crs)
    ids = list(named)
    lonlat = np.array(list(named.values()), dtype=np.float64).reshape(-1, 2)
    scenes = list(scenes)
    result = PointSamples(SAMPLE_SCHEMA.empty_table(), stats=stats if stats is not None else ReadStats())
    jobs = plan_point_windows(scenes, lonlat, bands, neighbourhood=neighbourhood, max_distance=max_distance,
                              failures=result.failures)
    columns: dict[str, list[Any]] = {name: [] for name in SAMPLE_SCHEMA.names}

    async def run(own: CogClient) -> None:
        for batch in point_batches(jobs, batch_windows):
            arrays = await own.read_windows(
                [(j.scene.bands[j.band].header, j.window) for j in batch], stats=result.stats, return_exceptions=True,
            )
            for job, array in zip(batch, arrays):
                if isinstance(array, CogError):
                    result.failures.append(ReadFailure(job.scene.id, job.band, ids[job.point_id], str(array)))
                    continue
                _emit(columns, job, array[0], ids[job.point_id], lonlat[job.point_id], max_distance, physical)

    if jobs:
        if client is None:
            async with CogClient(reader_options or ReaderOptions()) as own:
                await run(own)
        else:
            await run(client)
    result.table = pa.table(columns, schema=SAMPLE_SCHEMA)
    if result.table.num_rows == 0:
        if not scenes:
            result.notes.append("no scenes: the collection holds none for these dates, filters and points")
        elif not jobs:
            result.notes.append(f"no point lies inside any of the {len(scenes)} scenes' images")
        elif result.failures:
            result.notes.append(f"every read failed ({len(result.failures)} failures)")
    return result


def sample_points(scenes: Iterable[Scene], points: Any, bands: list[str], **kwargs: Any) -> PointSamples:
    """Synchronous :func:`asample_points`."""
    scenes = list(scenes)
    return run_sync(lambda: asample_points(scenes, points, bands, **kwargs))


def point_batches(jobs: list[_Job], size: int) -> Iterable[list[_Job]]:
    """The read calls of a point read: about ``size`` windows each, whole scenes only."""
    batch: list[_Job] = []
    for i, job in enumerate(jobs):
        batch.append(job)
        last_of_scene = i + 1 == len(jobs) or jobs[i + 1].scene is not job.scene
        if len(batch) >= size and last_of_scene:
            yield batch
            batch = []
    if batch:
        yield batch


def _emit(columns: dict[str, list[Any]], job: _Job, data: np.ndarray, point_id: str, lonlat: np.ndarray,
          max_distance: float | None, physical: bool) -> None:
    asset = job.scene.bands[job.band]
    header = asset.header
    w = job.window
    t = Affine(*header.transform[:6])
    rows, cols = np.mgrid[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width]
    cx = t.a * (cols + 0.5) + t.b * (rows + 0.5) + t.c
    cy = t.d * (cols + 0.5) + t.e * (rows + 0.5) + t.f
    dist = np.hypot(cx - job.x, cy - job.y)
    valid = valid_mask(data, header.nodata)
    if max_distance is not None:
        candidates = np.where(valid & (dist <= max_distance), dist, np.inf)
        flat = int(np.argmin(candidates))  # first minimum in row-major order
        if not np.isfinite(candidates.flat[flat]):
            _row(columns, job, point_id, lonlat, header, None, False, None, None, None)
            return
        picks = [np.unravel_index(flat, data.shape)]
    else:
        picks = [(r, c) for r in range(data.shape[0]) for c in range(data.shape[1])]
    # DN -> physical as decided at harvest: one home for the rule (rasteret_core.radiometry)
    values = radiometry.to_physical(data, asset.scale, asset.offset, header.nodata) if physical else data
    for r, c in picks:
        ok = bool(valid[r, c])
        value = float(values[r, c]) if ok or not physical else None
        _row(columns, job, point_id, lonlat, header, value, ok, float(dist[r, c]), int(rows[r, c]), int(cols[r, c]))


def _row(columns, job: _Job, point_id: str, lonlat, header: CogHeader, value, valid, distance, row, col) -> None:
    when = job.scene.datetime
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    for name, v in (("point_id", point_id), ("datetime", when), ("scene_id", job.scene.id), ("band", job.band),
                    ("value", value), ("valid", valid), ("distance", distance), ("row", row), ("col", col),
                    ("crs_epsg", header.crs_epsg), ("lon", float(lonlat[0])), ("lat", float(lonlat[1]))):
        columns[name].append(v)
