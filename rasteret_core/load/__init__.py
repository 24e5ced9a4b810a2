"""``load``: a lazy, dask-backed ``Dataset(time, y, x)`` on one grid, from a collection.

The arguments follow ``odc.stac.load``::

    from rasteret_core.load import load
    ds = load(collection, ["B04", "B08"], bbox=(77.5, 12.9, 77.7, 13.1), crs="EPSG:32643",
              resolution=10, chunks={"x": 2048, "y": 2048}, groupby="solar_day")
    ds.B04.isel(time=0).compute()      # or ds.to_zarr(...), on any dask scheduler

Building the Dataset reads nothing but the collection's Parquet. The graph has one task
per band, time step and output chunk; each task carries the stored headers and windows it
needs, so computing it makes range requests for tiles only (no header requests, on any
worker). Coarser outputs read the overview that fits; other grids are warped per chunk with
the band's resampling.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection.harvest import collection_reader_options
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import LoadError, PartialReadWarning
from rasteret_core.load.chunk import ChunkTask, compute_chunk, SourceRead
from rasteret_core.load.runtime import DEFAULT_CACHE_BYTES, process_stats
from rasteret_core.load.tasks import plan_band
from rasteret_core.raster.grid import lonlat_geometry, output_geobox
from rasteret_core.raster.grouping import group_scenes, mosaic_order, solar_day, TimeStep
from rasteret_core.types import band_list, BBox

__all__ = [
    "load", "LoadError", "ChunkTask", "SourceRead", "compute_chunk", "chunk_tasks", "process_stats",
    "TimeStep", "group_scenes", "mosaic_order", "solar_day", "DEFAULT_CHUNK",
]

DEFAULT_CHUNK = 2048
"""Default output chunk edge in pixels (y and x): 8 MiB of uint16 per task."""

_RESAMPLING = {"nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "max", "min",
               "med", "q1", "q3", "sum", "rms"}


MAX_TASKS = 200_000
"""Most chunk tasks one :func:`load` builds (each is planned before the graph is returned)."""


def load(
    source: Any,
    bands: Sequence[str] | str | None = None,
    *,
    bbox: BBox | None = None,
    geometry: Any = None,
    like: Any = None,
    geobox: Any = None,
    crs: Any = None,
    resolution: float | tuple[float, float] | None = None,
    anchor: Any = "native",
    chunks: Mapping[str, int] | None = None,
    groupby: str | None = "solar_day",
    resampling: str | Mapping[str, str] = "nearest",
    dtype: Any = None,
    nodata: float | Mapping[str, float] | None = None,
    physical: bool = False,
    date_range: tuple[Any, Any] | None = None,
    cloud_cover_lt: float | None = None,
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    warp_tolerance: float = 0.125,
    tile_cache_bytes: int = DEFAULT_CACHE_BYTES,
):
    """A lazy ``xarray.Dataset`` with one ``(time, y, x)`` dask variable per band.

    :param source: a :class:`~rasteret_core.collection.Collection`, or scenes from one.
    :param bands: band codes (default: every band the collection stores).
    :param bbox: lon/lat ``(min x, min y, max x, max y)`` of the area; or ``geometry`` (a
        shapely geometry in lon/lat or an ``odc.geo`` Geometry); or ``like`` (a Dataset /
        DataArray with a grid, or a GeoBox) or ``geobox`` to fix the whole grid.
    :param crs: output CRS (default: the CRS of the scenes covering most of the area).
    :param resolution: output pixel size in CRS units (default: finest native band).
    :param anchor: ``"native"`` (pixel edges on the stored grid when the resolution allows)
        or an odc-geo anchor (``"edge"``, ``"center"``, ``odc.geo.xy_(fx, fy)``).
    :param chunks: ``{"y": ..., "x": ...}`` output chunk size in pixels (time is always 1).
    :param groupby: ``"solar_day"`` (default), ``"time"``, a STAC property name, a callable of
        the scene, or ``None`` (one step). Scenes of one group are mosaicked, first valid pixel
        wins (least cloud first), as :mod:`rasteret_core.read.mosaic` defines.
    :param resampling: a rasterio resampling name, or ``{band: name, "*": default}``.
    :param dtype: output dtype (default: the stored one; ``float32`` with ``physical``).
    :param nodata: output fill for pixels no scene covers (default: the band's nodata, or 0;
        NaN with ``physical``).
    :param physical: physical values (``DN * scale + offset`` as decided at harvest, see
        :mod:`rasteret_core.radiometry`), float32 with NaN where nothing valid was read.
    :param date_range, cloud_cover_lt: scene filters, as :meth:`Collection.scenes`.
    :param reader_options: :class:`ReaderOptions` for the workers' reads. Credentials are
        refused here: they would travel inside the graph. Workers sign with the standard
        AWS chain (environment, profile, instance role).
    :param warp_tolerance: GDAL's approximate-transformer error in source pixels for the
        warps of kernels other than ``nearest`` (nearest picks always use the exact transform).
    :param tile_cache_bytes: decoded tiles each worker process keeps for neighbouring chunks.
    :returns: ``xarray.Dataset`` with ``time``, ``y``, ``x``, a ``spatial_ref`` coordinate
        (rioxarray/odc-geo: ``ds.rio.crs``, ``ds.odc.geobox``) and ``scene_id`` per time.
    :raises LoadError: for inconsistent arguments or when nothing is selected.
    :raises rasteret_core.errors.GridError: when the grid cannot be built.
    """
    import xarray as xr
    from odc.geo.geobox import GeoboxTiles
    from odc.geo.xr import xr_coords


    options = _options(reader_options)
    if hasattr(source, "data_source") and hasattr(source, "root"):  # a stored collection: its hrefs are
        options = collection_reader_options(source.data_source, options, root=source.root)  # third-party input
    scenes, bands = _scenes(source, bands, bbox=bbox, geometry=geometry, like=like, geobox=geobox,
                            date_range=date_range, cloud_cover_lt=cloud_cover_lt)
    for scene in scenes:
        for band in bands:
            asset = scene.bands.get(band)
            if asset is not None and asset.header is not None and asset.header.samples_per_pixel != 1:
                raise LoadError(f"{scene.id} {band}: load reads single-band images, this one has "
                                f"{asset.header.samples_per_pixel} samples per pixel")
    gbox = output_geobox(scenes, bands, geobox=geobox, like=like, bbox=bbox, geometry=geometry, crs=crs,
                         resolution=resolution, anchor=anchor)
    cy, cx = _chunk_shape(chunks, gbox.shape)
    tiles = GeoboxTiles(gbox, (cy, cx))
    steps = group_scenes(scenes, groupby)
    tasks = len(steps) * len(bands) * tiles.shape[0] * tiles.shape[1]
    if tasks > MAX_TASKS:  # every task is planned up front: refuse a graph no scheduler should hold
        raise LoadError(f"this load would build {tasks:,} tasks ({len(steps)} time steps x {len(bands)} bands x"
                        f" {tiles.shape[0]} x {tiles.shape[1]} chunks of {cy} x {cx} on a {gbox.shape[0]} x"
                        f" {gbox.shape[1]} grid), more than {MAX_TASKS:,}: use larger chunks=, a coarser"
                        " resolution=, a smaller area or fewer dates")
    variables = {}
    for band in bands:
        method = _resampling(resampling, band)
        out_dtype, fill = _dtype_fill(scenes, band, dtype, nodata, physical)
        plan = plan_band(band, steps, gbox, tiles, dtype=out_dtype, fill=fill, resampling=method, physical=physical,
                         options=options, warp_tolerance=warp_tolerance, cache_bytes=tile_cache_bytes)
        data = _dask_array(plan, tiles, len(steps))
        attrs = {"nodata": fill, "grid_mapping": "spatial_ref", "resampling": method}
        if physical:
            attrs["units"] = "1"
        variables[band] = xr.DataArray(data, dims=("time", "y", "x"), attrs=attrs)
    coords = xr_coords(gbox, crs_coord_name="spatial_ref")
    coords["time"] = np.array([np.datetime64(s.time.replace(tzinfo=None), "ns") for s in steps], dtype="datetime64[ns]")
    coords["scene_id"] = ("time", [",".join(sc.id for sc in s.scenes) for s in steps])
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs["crs"] = str(gbox.crs)
    return ds


def chunk_tasks(ds) -> dict[tuple, ChunkTask]:
    """The :class:`ChunkTask` of every block a (possibly sliced) loaded Dataset computes, by dask key."""
    out: dict[tuple, ChunkTask] = {}
    for var in ds.data_vars.values():
        for key, task in dict(var.data.__dask_graph__()).items():
            found = _chunk_task(task)
            if found is not None:
                out[key] = found
    return out


def _chunk_task(task) -> ChunkTask | None:
    if isinstance(task, tuple):
        return task[1] if task and task[0] is compute_chunk else None
    if getattr(task, "func", None) is compute_chunk:
        arg = task.args[0]
        return getattr(arg, "value", arg)
    return None


# --- helpers -------------------------------------------------------------------------------
def _options(reader_options) -> ReaderOptions:
    options = ReaderOptions.coerce(reader_options)
    given = options.credential_fields()
    if given:
        raise LoadError(
            f"reader_options holds {', '.join(given)}: load() never puts credentials into the task graph; "
            "give them to the workers through the standard AWS chain (AWS_* environment, profile, instance role)"
        )
    return options


def _scenes(source, bands, *, bbox, geometry, like, geobox, date_range, cloud_cover_lt) -> tuple[list[Scene], list[str]]:
    bands = band_list(bands) if bands is not None else None
    if hasattr(source, "scenes") and callable(source.scenes):
        bands = list(bands) if bands is not None else list(source.bands)
        query = _query_bbox(bbox, geometry, like, geobox)
        scenes = source.scenes(date_range=date_range, cloud_cover_lt=cloud_cover_lt, bbox=query, bands=bands)
        where = f"collection {getattr(source, 'name', '')!r}"
    else:
        scenes = list(source)
        if bands is None:
            bands = sorted({b for s in scenes for b in s.bands})
        bands = list(bands)
        where = "the scenes given"
        if date_range is not None or cloud_cover_lt is not None:
            raise LoadError("date_range= and cloud_cover_lt= filter a collection; filter a list of scenes yourself")
    if not bands:
        raise LoadError(f"no bands to load from {where}")
    _warn_unreadable(scenes, bands)
    scenes = [s for s in scenes if any(b in s.bands and s.bands[b].header is not None for b in bands)]
    if not scenes:
        raise LoadError(f"nothing to load: no scene of {where} with a stored header for {bands} matches the filters "
                        f"(date_range={date_range}, cloud_cover_lt={cloud_cover_lt}, area={bbox or geometry or like or geobox})")
    return scenes, bands


def _warn_unreadable(scenes: Sequence[Scene], bands: Sequence[str]) -> None:
    """One :class:`PartialReadWarning` naming the (scene, band) pairs a load leaves out because
    their stored header was refused or never read (a load reads what it can, and says so)."""
    refused = [(s.id, b, s.bands[b].error) for s in scenes for b in bands
               if b in s.bands and s.bands[b].header is None and s.bands[b].error]
    if refused:
        first = "; ".join(f"{sid}/{band}: {error}" for sid, band, error in refused[:3])
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        warnings.warn(f"load leaves out {len(refused)} band(s) whose stored header is not usable: {first}{more}",
                      PartialReadWarning, stacklevel=4)


def _query_bbox(bbox, geometry, like, geobox):
    """The lon/lat box used to pick scenes from the collection (None: all)."""
    if bbox is not None:
        return tuple(float(v) for v in bbox)
    if geometry is not None:
        return tuple(lonlat_geometry(geometry).boundingbox)
    box = geobox if geobox is not None else None
    if like is not None:
        from odc.geo.geobox import GeoBox

        box = like if isinstance(like, GeoBox) else getattr(getattr(like, "odc", None), "geobox", None)
    if box is not None:
        return tuple(box.extent.to_crs("EPSG:4326").boundingbox)
    return None


def _chunk_shape(chunks, shape) -> tuple[int, int]:
    chunks = dict(chunks or {})
    unknown = set(chunks) - {"x", "y", "time", "longitude", "latitude"}
    if unknown:
        raise LoadError(f"chunks= has unknown dimension(s) {sorted(unknown)}: use 'y' and 'x'")
    if chunks.get("time", 1) not in (1, None):
        raise LoadError("chunks={'time': ...}: every task is one time step; time chunks are always 1")

    def one(name: str, alt: str, size: int) -> int:
        value = chunks.get(name, chunks.get(alt, DEFAULT_CHUNK))
        if value in (-1, None):
            return size
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise LoadError(f"chunks[{name!r}] must be a positive integer or -1, not {value!r}")
        return int(min(value, size))

    return one("y", "latitude", shape[0]), one("x", "longitude", shape[1])


def _resampling(resampling, band: str) -> str:
    if isinstance(resampling, str):
        method = resampling
    else:
        method = resampling.get(band, resampling.get("*", "nearest"))
    if method not in _RESAMPLING:
        raise LoadError(f"resampling {method!r} for {band} is not one of {sorted(_RESAMPLING)}")
    return method


def _dtype_fill(scenes, band: str, dtype, nodata, physical: bool) -> tuple[str, float]:
    headers = [s.bands[band].header for s in scenes if band in s.bands and s.bands[band].header is not None]
    if not headers:
        raise LoadError(f"no scene has a stored header for band {band!r}")
    if isinstance(dtype, Mapping):
        dtype = dtype.get(band, dtype.get("*"))
    if isinstance(nodata, Mapping):
        nodata = nodata.get(band, nodata.get("*"))
    if physical:
        out = np.dtype(dtype or "float32")
        if out.kind != "f":
            raise LoadError(f"physical=True gives floats; dtype {out} cannot hold them")
        fill = math.nan if nodata is None else float(nodata)
        return out.name, fill
    out = np.dtype(dtype) if dtype is not None else headers[0].dtype
    if nodata is None:
        nodata = headers[0].nodata if headers[0].nodata is not None else 0
    try:
        np.array(nodata).astype(out, casting="same_kind" if out.kind == "f" else "unsafe")
    except (ValueError, OverflowError) as exc:
        raise LoadError(f"nodata {nodata} does not fit dtype {out} for {band}") from exc
    return out.name, float(nodata)


def _dask_array(plan, tiles, steps: int):
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"load-{plan.band.lower()}-{_plan_token(plan, tokenize)}"
    dsk = {}
    for t, rows in enumerate(plan.tasks):
        for iy, row in enumerate(rows):
            for ix, task in enumerate(row):
                dsk[(name, t, iy, ix)] = (compute_chunk, task)
    ychunks, xchunks = tiles.chunks
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return da.Array(graph, name, chunks=((1,) * steps, ychunks, xchunks), dtype=plan.dtype)


def _plan_token(plan, tokenize) -> str:
    """A deterministic name for a band's plan, hashed task by task: dask's ``tokenize`` of one
    list of every task held about 6 KiB per task at once (200 MiB for a 36,000-chunk load)."""
    tasks = (t for rows in plan.tasks for row in rows for t in row)
    first = next(iter(tasks), None)
    digest = hashlib.sha256(tokenize(plan.band, plan.dtype, plan.fill, first.crs_wkt if first else None,
                                     first.options if first else None).encode())
    for rows in plan.tasks:
        digest.update(b"|step")  # the layout too: 1 step of 2 rows is not 2 steps of 1 row
        for row in rows:
            digest.update(b"|row")
            for t in row:
                digest.update(repr((t.shape, t.transform, t.origin, t.resampling, t.physical, t.warp_tolerance,
                                    t.cache_bytes, [(s.scene_id, s.header.url, s.overview, s.window, s.dst, s.paste,
                                                     s.scale, s.offset) for s in t.sources])).encode())
    return digest.hexdigest()[:32]
