"""From scenes and an output grid to chunk tasks, with no I/O (stored headers only).

For every band, time step and output chunk, the scenes whose image overlaps the chunk
contribute a :class:`SourceRead`: the window of the image (or of the overview chosen for
the output resolution) that covers the chunk plus the resampling kernel's padding, found
with ``odc.geo.overlap.compute_reproject_roi`` on the stored grids.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from typing import Mapping

from affine import Affine
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.overlap import compute_reproject_roi
from odc.geo.roi import roi_is_empty

from rasteret_core.cog import CogHeader, ReaderOptions
from rasteret_core.load.chunk import ChunkTask, SourceRead
from rasteret_core.raster.grid import header_geobox, pick_overview, pixel_bounds
from rasteret_core.raster.grouping import TimeStep

PADDING = {"nearest": 1, "bilinear": 2, "cubic": 3, "cubic_spline": 3, "lanczos": 4}
"""Source pixels read beyond a chunk's footprint, per resampling kernel (2 for the others)."""


@dataclass(frozen=True)
class BandPlan:
    """The chunk tasks of one band: ``tasks[t][iy][ix]``."""

    band: str
    dtype: str
    fill: float
    tasks: list[list[list[ChunkTask]]]


def _stripped(header: CogHeader) -> CogHeader:
    return replace(header, overviews=(), mask=None)


def plan_band(
    band: str,
    steps: list[TimeStep],
    geobox: GeoBox,
    tiles: GeoboxTiles,
    *,
    dtype: str,
    fill: float,
    resampling: str,
    physical: bool,
    options: ReaderOptions,
    warp_tolerance: float,
    cache_bytes: int,
) -> BandPlan:
    """Chunk tasks of ``band`` over ``steps`` on ``geobox`` cut into ``tiles`` (chunks)."""
    pad = PADDING.get(resampling, 2)
    ny, nx = tiles.shape
    crs_wkt = geobox.crs.to_wkt()
    grid_transform = tuple(geobox.affine)[:6]
    per_scene: dict[str, _Image | None] = {}
    empty: dict[tuple[int, int], ChunkTask] = {}
    y_edges, x_edges = (_edges(sizes) for sizes in tiles.chunks)
    out: list[list[list[ChunkTask]]] = []
    for step in steps:
        # each scene meets only the chunks under its image: the plan costs the chunks the
        # scenes touch, not the grid's (a fine load over a wide area is mostly empty chunks)
        touching: dict[tuple[int, int], list[tuple[str, _Image]]] = {}
        for scene in step.scenes:
            if scene.id not in per_scene:
                per_scene[scene.id] = _choose_image(scene, band, geobox, pad)
            image = per_scene[scene.id]
            if image is None:
                continue
            for iy in _chunks_over(y_edges, image.rows):
                for ix in _chunks_over(x_edges, image.cols):
                    touching.setdefault((iy, ix), []).append((scene.id, image))
        rows = []
        for iy in range(ny):
            row = []
            for ix in range(nx):
                sources = touching.get((iy, ix))
                if not sources:  # nothing to read: one shared fill task per chunk shape
                    shape = (tiles.chunks[0][iy], tiles.chunks[1][ix])
                    if shape not in empty:
                        empty[shape] = ChunkTask(band, shape, tuple(geobox.affine)[:6], crs_wkt, dtype, fill,
                                                 resampling, physical, (), options, warp_tolerance, cache_bytes,
                                                 grid_transform, (0, 0))
                    row.append(empty[shape])
                    continue
                chunk = tiles[iy, ix]
                chunk_rows, chunk_cols = tiles.roi[iy, ix]
                reads = []
                for scene_id, image in sources:
                    read = _source_read(scene_id, image.header, image.overview, image.box, chunk, pad, image.scale,
                                        image.offset)
                    if read is not None:
                        reads.append(read)
                row.append(ChunkTask(
                    band, (chunk.shape.y, chunk.shape.x), tuple(chunk.affine)[:6], crs_wkt, dtype, fill,
                    resampling, physical, tuple(reads), options, warp_tolerance, cache_bytes,
                    grid_transform, (chunk_rows.start, chunk_cols.start),
                ))
            rows.append(row)
        out.append(rows)
    return BandPlan(band, dtype, fill, out)


@dataclass(frozen=True)
class _Image:
    """The image of one scene's band a load reads, and the output rows/columns it can reach."""

    header: CogHeader
    overview: int | None
    box: GeoBox
    scale: float | None
    offset: float | None
    rows: slice
    cols: slice


def _edges(sizes: tuple[int, ...]) -> list[int]:
    """Start offsets of chunks of ``sizes``, then the total: ``[0, s0, s0 + s1, ...]``."""
    edges = [0]
    for size in sizes:
        edges.append(edges[-1] + size)
    return edges


def _chunks_over(edges: list[int], span: slice) -> range:
    """Indices of the chunks (between ``edges``) that ``span`` of output pixels overlaps."""
    first = max(0, bisect_right(edges, span.start) - 1)
    last = min(len(edges) - 1, bisect_left(edges, span.stop))
    return range(first, last)


def _choose_image(scene, band: str, geobox: GeoBox, pad: int) -> _Image | None:
    """The image of ``scene``'s band to read for ``geobox`` (overview by resolution), or None."""
    asset = scene.bands.get(band)
    if asset is None or asset.header is None:
        return None
    header = asset.header
    info = compute_reproject_roi(header_geobox(header), geobox, padding=pad)
    if roi_is_empty(info.roi_dst):
        return None
    ov = pick_overview(header, info.read_shrink)
    image = header if ov is None else header.overviews[ov]
    if ov is not None:  # overviews carry their own (scaled) transform; CRS and nodata are the file's
        image = replace(image, crs_epsg=header.crs_epsg, crs_wkt=header.crs_wkt,
                        nodata=image.nodata if image.nodata is not None else header.nodata)
    image = _stripped(image)
    box = header_geobox(image)
    rows, cols = _reach(image, box, geobox, pad)
    return _Image(image, ov, box, asset.scale, asset.offset, rows, cols)


def _reach(image: CogHeader, box: GeoBox, geobox: GeoBox, pad: int) -> tuple[slice, slice]:
    """The output rows and columns a read of ``image`` (padded by ``pad`` of its pixels) can
    fill, with a margin of 2 output pixels for each chunk's own rounding; the whole grid when
    the image's outline cannot be placed on it (then every chunk is checked, as before)."""
    padded = box.affine * Affine.translation(-pad, -pad)
    bounds = pixel_bounds(geobox, padded, (box.shape.y + 2 * pad, box.shape.x + 2 * pad), box.crs)
    if bounds is None:
        return slice(0, geobox.shape.y), slice(0, geobox.shape.x)
    r0, c0, r1, c1 = bounds
    return (slice(max(0, math.floor(r0) - 2), max(0, math.ceil(r1) + 2)),
            slice(max(0, math.floor(c0) - 2), max(0, math.ceil(c1) + 2)))


def _source_read(scene_id: str, header: CogHeader, ov: int | None, src_box: GeoBox, chunk: GeoBox, pad: int,
                 scale, offset) -> SourceRead | None:
    # default padding first: odc-geo reports a pure translation (paste) only without padding
    info = compute_reproject_roi(src_box, chunk)
    if not info.paste_ok:
        info = compute_reproject_roi(src_box, chunk, padding=pad)
    if roi_is_empty(info.roi_dst) or roi_is_empty(info.roi_src):
        return None
    ys, xs = info.roi_src
    yd, xd = info.roi_dst
    window = (ys.start, ys.stop, xs.start, xs.stop)
    dst = (yd.start, yd.stop, xd.start, xd.stop)
    paste = bool(info.paste_ok) and (ys.stop - ys.start, xs.stop - xs.start) == (yd.stop - yd.start, xd.stop - xd.start)
    if not paste:
        # the whole chunk: a nearest pick is made per pixel there (pixels off the image stay
        # empty); other kernels are GDAL warps, whose results depend on the destination window
        dst = (0, chunk.shape.y, 0, chunk.shape.x)
    return SourceRead(scene_id, header, ov, window, dst, paste, scale, offset)
