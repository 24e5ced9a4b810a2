"""One chunk task: what it reads (scenes, windows, tiles, byte ranges) and how it is computed.

A :class:`ChunkTask` is a small picklable value: the chunk's grid, and per scene the image
(full resolution or the chosen overview) and the window of it to read. :func:`compute_chunk`
runs on a worker: it reads the windows through the process's runtime (no header request:
the headers travel in the task), puts each onto the chunk grid and mosaics them, the first
valid pixel winning (the order is fixed when the task is built). Coinciding grids are pasted;
``nearest`` picks the source pixel under each output centre from the whole grid
(:mod:`rasteret_core.raster.nearest`), so the values never depend on the chunking; other
kernels are GDAL warps per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

from rasteret_core.cog import CogHeader, ReaderOptions
from rasteret_core.load.runtime import DEFAULT_CACHE_BYTES, runtime, tile_indices
from rasteret_core.radiometry import to_physical
from rasteret_core.raster.nearest import nearest_source_pixels, take_nearest


@dataclass(frozen=True)
class SourceRead:
    """One scene's contribution to a chunk.

    ``header`` is the image read (an overview's header when one was chosen, with no nested
    overviews, to keep the graph small); ``window`` is ``(row0, row1, col0, col1)`` in it;
    ``dst`` the ``(row0, row1, col0, col1)`` of the chunk it covers. ``paste`` means the grids
    coincide there, so pixels are copied; otherwise they are warped with the task's resampling.
    """

    scene_id: str
    header: CogHeader
    overview: int | None
    window: tuple[int, int, int, int]
    dst: tuple[int, int, int, int]
    paste: bool
    scale: float | None = None
    offset: float | None = None

    @property
    def tiles(self) -> list[int]:
        """Indexes of the tiles of ``header`` this read needs."""

        return tile_indices(self.header, self.window)

    @property
    def byte_ranges(self) -> list[tuple[int, int]]:
        """``[start, end)`` byte ranges of those tiles (before merging into requests)."""
        h = self.header
        return [(int(h.tile_offsets[t]), int(h.tile_offsets[t] + h.tile_byte_counts[t])) for t in self.tiles]


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to compute one ``(band, time step, y chunk, x chunk)`` block."""

    band: str
    shape: tuple[int, int]
    transform: tuple[float, ...]
    crs_wkt: str
    dtype: str
    fill: float
    resampling: str
    physical: bool
    sources: tuple[SourceRead, ...]
    options: ReaderOptions
    warp_tolerance: float = 0.125
    cache_bytes: int = DEFAULT_CACHE_BYTES
    grid_transform: tuple[float, ...] | None = None
    """The whole output grid's transform (``transform`` is this chunk's): nearest picks use it."""
    origin: tuple[int, int] = (0, 0)
    """The chunk's first ``(row, col)`` in the whole grid."""


def compute_chunk(task: ChunkTask) -> np.ndarray:
    """The block of ``task`` with shape ``(1, height, width)``.

    Raises the reader's ``CogError`` (naming the URL) when a tile cannot be read.
    """
    height, width = task.shape
    dtype = np.dtype(task.dtype)
    if not task.sources:
        return np.full((1, height, width), task.fill, dtype=dtype)
    arrays = runtime(task.options, task.cache_bytes).read([(s.header, s.window) for s in task.sources])
    out = np.full((height, width), task.fill, dtype=dtype)  # after the read: waiting tasks hold nothing
    filled: np.ndarray | None = None  # only needed when "not yet filled" cannot be read off the values
    for i, (src, data) in enumerate(zip(task.sources, arrays)):
        r0, r1, c0, c1 = src.dst
        region = out[r0:r1, c0:c1]
        nodata = src.header.nodata
        if src.paste:
            values, valid = data, None
        elif task.resampling == "nearest":
            values, valid = _nearest(task, src, data)
        else:
            values, valid = _warp(task, src, data)
        if _fill_marks_empty(task, src, dtype):
            # the output's fill is the source's nodata: an unfilled pixel holds it, an invalid
            # source pixel holds it too, so copying where the output is still empty is the mosaic
            if i == 0:
                np.copyto(region, values, casting="unsafe")
            else:
                np.copyto(region, values, where=(region == task.fill) & (values != nodata), casting="unsafe")
            continue
        if valid is None:
            valid = values != nodata if nodata is not None else np.ones(values.shape, dtype=bool)
        if filled is None:
            filled = np.zeros((height, width), dtype=bool)
        take = valid & ~filled[r0:r1, c0:c1]
        if not take.any():
            continue
        np.copyto(region, _convert(values, src, task, dtype), where=take, casting="unsafe")
        filled[r0:r1, c0:c1] |= take
        if filled.all():
            break
    return out[None]


def _fill_marks_empty(task: ChunkTask, src: SourceRead, dtype: np.dtype) -> bool:
    nodata = src.header.nodata
    return (not task.physical and nodata is not None and not np.isnan(nodata) and float(task.fill) == float(nodata)
            and dtype == src.header.dtype)


def _convert(values: np.ndarray, src: SourceRead, task: ChunkTask, dtype: np.dtype) -> np.ndarray:
    if task.physical:
        return to_physical(values, src.scale, src.offset, nodata=None).astype(dtype, copy=False)
    return values.astype(dtype, copy=False)


def _nearest(task: ChunkTask, src: SourceRead, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``data`` picked onto the chunk region ``src.dst`` by the whole grid's nearest rule."""
    h = src.header
    d0, d1, e0, e1 = src.dst
    row0, col0 = task.origin
    grid = Affine(*(task.grid_transform or task.transform))
    src_crs = f"EPSG:{h.crs_epsg}" if h.crs_epsg is not None else h.crs_wkt
    iy, ix = nearest_source_pixels(grid, task.crs_wkt, (row0 + d0, row0 + d1), (col0 + e0, col0 + e1),
                                   Affine(*h.transform), src_crs, (h.height, h.width))
    fill = h.nodata if h.nodata is not None else 0
    values, inside = take_nearest(data, src.window, iy, ix, fill)
    if h.nodata is None:
        return values, inside
    valid = values != h.nodata if not np.isnan(h.nodata) else ~np.isnan(values)
    return values, valid & inside


def _warp(task: ChunkTask, src: SourceRead, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``data`` warped onto the chunk region ``src.dst``, and where it holds valid pixels."""
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    h = src.header
    r0, r1, c0, c1 = src.window
    src_transform = Affine(*h.transform) * Affine.translation(c0, r0)
    d0, d1, e0, e1 = src.dst
    dst_transform = Affine(*task.transform) * Affine.translation(e0, d0)
    src_crs = CRS.from_epsg(h.crs_epsg) if h.crs_epsg is not None else CRS.from_wkt(h.crs_wkt)
    dst_crs = CRS.from_wkt(task.crs_wkt)
    resampling = Resampling[task.resampling]
    shape = (d1 - d0, e1 - e0)
    if h.nodata is not None:
        nodata = h.nodata
        warped = np.full(shape, nodata, dtype=data.dtype)
        reproject(data, warped, src_transform=src_transform, src_crs=src_crs, src_nodata=nodata,
                  dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=nodata, resampling=resampling,
                  init_dest_nodata=True, tolerance=task.warp_tolerance)
        return warped, warped != nodata
    # no nodata: warp a coverage mask alongside, so pixels outside the scene are known
    warped = np.zeros(shape, dtype=data.dtype)
    cover = np.zeros(shape, dtype=np.uint8)
    for arr, dst, method in ((data, warped, resampling), (np.ones(data.shape, np.uint8), cover, Resampling.nearest)):
        reproject(arr, dst, src_transform=src_transform, src_crs=src_crs, dst_transform=dst_transform,
                  dst_crs=dst_crs, resampling=method, tolerance=task.warp_tolerance)
    return warped, cover.astype(bool)
