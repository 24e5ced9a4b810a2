"""From scenes and an output grid to chunk tasks, with no I/O (stored headers only).

For every band, time step and output chunk, the scenes whose image overlaps the chunk
contribute a :class:`SourceRead`: the window of the image (or of the overview chosen for
the output resolution) that covers the chunk plus the resampling kernel's padding, found
with ``odc.geo.overlap.compute_reproject_roi`` on the stored grids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.overlap import compute_reproject_roi
from odc.geo.roi import roi_is_empty

from rasteret_core.cog import CogHeader, ReaderOptions
from rasteret_core.load.chunk import ChunkTask, SourceRead
from rasteret_core.raster.grid import header_geobox, pick_overview
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
    per_scene: dict[str, tuple[CogHeader, int | None, GeoBox, float | None, float | None] | None] = {}
    out: list[list[list[ChunkTask]]] = []
    for step in steps:
        sources_by_scene = []
        for scene in step.scenes:
            if scene.id not in per_scene:
                per_scene[scene.id] = _choose_image(scene, band, geobox, pad)
            if per_scene[scene.id] is not None:
                sources_by_scene.append((scene.id, per_scene[scene.id]))
        rows = []
        for iy in range(ny):
            row = []
            for ix in range(nx):
                chunk = tiles[iy, ix]
                chunk_rows, chunk_cols = tiles.roi[iy, ix]
                reads = []
                for scene_id, (header, ov, src_box, scale, offset) in sources_by_scene:
                    read = _source_read(scene_id, header, ov, src_box, chunk, pad, scale, offset)
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


def _choose_image(scene, band: str, geobox: GeoBox, pad: int):
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
    return image, ov, header_geobox(image), asset.scale, asset.offset


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
