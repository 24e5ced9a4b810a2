"""Output grids: the one place that decides a read's target CRS, pixel grid and extent.

Grids are ``odc.geo.geobox.GeoBox`` values (CRS, affine, shape), the convention odc-stac,
odc-geo and rioxarray users know. Everything here works on stored headers and footprints:
no I/O.

- :func:`header_geobox`: the grid of one stored COG image (or one of its overviews).
- :func:`crs_of_largest_overlap`: the CRS to use when several scenes' CRSs meet a region.
- :func:`output_geobox`: the grid of a ``load`` from its odc-stac style arguments.
- :func:`pick_overview`: the overview to read for a given shrink factor.
- :func:`aoi_geobox`: an AOI's grid with ``rasterio.mask(crop=True)`` semantics on a stored
  pixel lattice (the per date x AOI mosaic), :func:`crop_to_extents` that grid cut to where
  images can contribute, :func:`inside_mask` its AOI pixels, :func:`aoi_pixel_count` the AOI's
  pixels on the uncut grid without allocating it, and :func:`sample_nearest` any band (a 20 m
  mask, a scene in the next UTM zone) onto it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

import numpy as np
from affine import Affine
from odc.geo import CRS, resxy_, xy_
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box as geo_box
from rasterio.errors import WindowError
from rasterio.features import geometry_mask, geometry_window
from rasterio.warp import Resampling, reproject
from rasterio.windows import transform as window_transform
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import CogHeader
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import GridError
from rasteret_core.raster.geometry import to_crs
from rasteret_core.raster.nearest import nearest_source_pixels, take_nearest
from rasteret_core.types import BBox

__all__ = [
    "GridError", "header_geobox", "crs_of_largest_overlap", "output_geobox", "pick_overview", "native_anchor",
    "aoi_geobox", "crop_to_extents", "pixel_bounds", "aoi_pixel_count", "geobox_crs", "geobox_epsg", "inside_mask",
    "sample_nearest",
]


def header_geobox(header: CogHeader) -> GeoBox:
    """The pixel grid of a stored image: its shape, affine and CRS (EPSG code or WKT).

    Raises :class:`GridError` when the header has no CRS.
    """
    crs = _header_crs(header)
    return GeoBox((header.height, header.width), Affine(*header.transform), crs)


def _header_crs(header: CogHeader) -> CRS:
    if header.crs_epsg is not None:
        return CRS(f"EPSG:{header.crs_epsg}")
    if header.crs_wkt:
        return CRS(header.crs_wkt)
    raise GridError(f"{header.url}: the image has no CRS")


def lonlat_geometry(geom: Geometry | BaseGeometry) -> Geometry:
    """An odc ``Geometry`` in EPSG:4326 (shapely geometries are taken as lon/lat)."""
    if isinstance(geom, Geometry):
        return geom.to_crs("EPSG:4326") if geom.crs is not None and geom.crs != "EPSG:4326" else geom
    return Geometry(geom, "EPSG:4326")


def crs_of_largest_overlap(scenes: Iterable[Scene], band: str, region: Geometry | BaseGeometry | None = None) -> CRS:
    """The CRS whose scenes cover most of ``region`` (lon/lat), or of all footprints when ``None``.

    Ties go to the CRS met first (scenes in time order), so the choice is deterministic.
    Raises :class:`GridError` when no scene has ``band`` with a CRS.
    """
    area: dict[str, float] = defaultdict(float)
    crss: dict[str, CRS] = {}
    clip = lonlat_geometry(region).geom if region is not None else None
    for scene in scenes:
        asset = scene.bands.get(band)
        if asset is None or asset.header is None:
            continue
        try:
            crs = _header_crs(asset.header)
        except GridError:
            continue
        key = crs.to_wkt()
        crss.setdefault(key, crs)
        footprint = scene.geometry if clip is None else scene.geometry.intersection(clip)
        area[key] += footprint.area
    if not crss:
        raise GridError(f"no scene has band {band!r} with a CRS: cannot choose an output CRS")
    best = max(crss, key=lambda k: area[k])  # max keeps the first of equal areas
    return crss[best]


def native_anchor(header: CogHeader, resolution: float) -> Any:
    """The odc-geo anchor that puts output pixel edges on ``header``'s pixel edges.

    Used when the output resolution is the native one (or a multiple of it), so a load on
    the native grid reads pixels exactly as stored. Falls back to ``"edge"`` otherwise.
    """
    a, _, c, _, e, f = header.transform
    native = abs(a)
    ratio = resolution / native
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
        return "edge"
    fx = (c / resolution) % 1.0
    fy = (f / resolution) % 1.0
    fx = 0.0 if math.isclose(fx, 1.0, abs_tol=1e-9) else fx
    fy = 0.0 if math.isclose(fy, 1.0, abs_tol=1e-9) else fy
    return xy_(fx, fy)


def output_geobox(
    scenes: Sequence[Scene],
    bands: Sequence[str],
    *,
    geobox: GeoBox | None = None,
    like: Any = None,
    bbox: BBox | None = None,
    geometry: Geometry | BaseGeometry | None = None,
    crs: Any = None,
    resolution: float | tuple[float, float] | None = None,
    anchor: Any = "native",
) -> GeoBox:
    """The output grid of a load, from odc-stac's arguments.

    Precedence: ``geobox``, then ``like`` (anything with ``.odc.geobox``, or a GeoBox), else a
    grid built from ``crs`` (default: the CRS of largest overlap with the region), ``resolution``
    (default: the finest native resolution among ``bands`` in that CRS) and the region:
    ``geometry`` or ``bbox`` (lon/lat), default the union of the scene footprints.
    ``anchor="native"`` aligns pixel edges with the finest band's stored grid when the
    resolution allows it; any odc-geo anchor (``"edge"``, ``"center"``, an ``XY``) is accepted.

    Raises :class:`GridError` for conflicting or incomplete arguments.
    """
    given = [name for name, v in (("geobox", geobox), ("like", like)) if v is not None]
    if len(given) > 1:
        raise GridError("give at most one of geobox= and like=")
    if given and any(v is not None for v in (crs, resolution, bbox, geometry)):
        raise GridError(f"{given[0]}= fixes the grid: do not also give crs, resolution, bbox or geometry")
    if geobox is not None:
        return geobox
    if like is not None:
        if isinstance(like, GeoBox):
            return like
        gbox = getattr(getattr(like, "odc", None), "geobox", None)
        if not isinstance(gbox, GeoBox):
            raise GridError("like= must be a GeoBox or an xarray object with a CRS and a regular grid")
        return gbox
    if bbox is not None and geometry is not None:
        raise GridError("give bbox= or geometry=, not both")
    if bbox is not None:
        x0, y0, x1, y1 = (float(v) for v in bbox)
        if not (x0 < x1 and y0 < y1):
            raise GridError(f"bbox {bbox} must be (min lon, min lat, max lon, max lat)")
        region: Geometry | None = geo_box(x0, y0, x1, y1, "EPSG:4326")
    elif geometry is not None:
        region = lonlat_geometry(geometry)
    else:
        region = None
    headers = [(s, b, s.bands[b].header) for s in scenes for b in bands if b in s.bands and s.bands[b].header is not None]
    if not headers:
        raise GridError(f"no scene has a stored header for bands {list(bands)}: nothing to build a grid from")
    if crs is None:
        out_crs = crs_of_largest_overlap(scenes, min(bands, key=lambda b: _finest_res(headers, b)), region)
    else:
        out_crs = CRS(crs) if not isinstance(crs, CRS) else crs
    if region is None:
        import shapely

        region = Geometry(shapely.union_all([s.geometry for s in scenes]), "EPSG:4326")
    same_crs = [h for _s, _b, h in headers if _safe_crs(h) == out_crs]
    if resolution is None:
        if not same_crs:
            raise GridError(f"no band is stored in {out_crs}: give resolution=")
        resolution = min(abs(h.transform[0]) for h in same_crs)
    res = _check_resolution(resolution)
    if anchor == "native":
        ref = min(same_crs, key=lambda h: abs(h.transform[0]), default=None)
        anchor = native_anchor(ref, abs(res[0])) if ref is not None and abs(res[0]) == abs(res[1]) else "edge"

    bounds = region.to_crs(out_crs).boundingbox
    pixels = (abs(bounds.right - bounds.left) / abs(res[0]) + 1) * (abs(bounds.top - bounds.bottom) / abs(res[1]) + 1)
    if not math.isfinite(pixels) or pixels > MAX_GRID_PIXELS:
        raise GridError(f"a {abs(bounds.right - bounds.left):.6g} x {abs(bounds.top - bounds.bottom):.6g} area at"
                        f" resolution {abs(res[0]):g} x {abs(res[1]):g} is {pixels:.3g} pixels per time step, more"
                        f" than {MAX_GRID_PIXELS:.3g}: check resolution= (it is in {out_crs} units) or the area")
    return GeoBox.from_geopolygon(region.to_crs(out_crs), resolution=resxy_(res[0], res[1]), crs=out_crs, anchor=anchor)


MAX_GRID_PIXELS = 2**40
"""Largest output grid (pixels per time step) :func:`output_geobox` builds: beyond it a grid is a
mistake in ``resolution`` or the region (0.01 m over 22 km is 4.8e12 pixels)."""


def _check_resolution(resolution: Any) -> tuple[float, float]:
    """``(x, y)`` pixel size from a positive number (y made negative, north up) or a pair."""
    if isinstance(resolution, (int, float, np.integer, np.floating)):
        value = float(resolution)
        if not math.isfinite(value) or value <= 0:
            raise GridError(f"resolution must be a finite, positive pixel size, got {resolution!r}")
        return value, -value
    try:
        x, y = (float(v) for v in resolution)
    except (TypeError, ValueError):
        raise GridError(f"resolution must be a number or an (x, y) pair, got {resolution!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)) or x == 0 or y == 0:
        raise GridError(f"resolution must be finite and non-zero, got {resolution!r}")
    return x, y


def _finest_res(headers, band: str) -> float:
    return min((abs(h.transform[0]) for _s, b, h in headers if b == band), default=math.inf)


def _safe_crs(header: CogHeader) -> CRS | None:
    try:
        return _header_crs(header)
    except GridError:
        return None


def pick_overview(header: CogHeader, read_shrink: int) -> int | None:
    """The overview to read when ``read_shrink`` source pixels per output pixel are allowed.

    Returns the index into ``header.overviews`` of the coarsest overview whose decimation
    (width ratio, as GDAL computes it) is at most ``read_shrink``, or ``None`` for full
    resolution. This is GDAL's and odc-stac's rule: never read coarser than the output.
    """
    best: int | None = None
    best_factor = 1.0
    for i, ov in enumerate(header.overviews):
        factor = header.width / ov.width
        if factor <= read_shrink * (1 + 1e-6) and factor > best_factor:
            best, best_factor = i, factor
    return best


# --- AOI grids with rasterio.mask semantics (the mosaic of one AOI and date) ------------------
def _crs_text(crs: int | str | CRS) -> str:
    """``"EPSG:n"`` for an EPSG code, else the CRS as given (``"EPSG:n"`` or WKT)."""
    if isinstance(crs, CRS):
        return f"EPSG:{crs.epsg}" if crs.epsg is not None else crs.to_wkt()
    return f"EPSG:{crs}" if isinstance(crs, int) else crs


def geobox_crs(gbox: GeoBox) -> str:
    """A grid's CRS as ``"EPSG:n"``, or WKT when it has no EPSG code (as ``CogHeader.crs``)."""
    return _crs_text(gbox.crs)


def aoi_geobox(geometry: BaseGeometry, crs_epsg: int | str | CRS, lattice: Affine) -> GeoBox | None:
    """The grid ``rasterio.mask.mask(crop=True)`` gives ``geometry`` (lon/lat) on the pixel
    lattice of ``lattice`` (any stored image's transform in that CRS: an EPSG code,
    ``"EPSG:n"``, WKT or an odc-geo CRS), unbounded:
    the window is not cut at the image's edges, so an AOI half outside every scene keeps its
    full extent. ``None`` when the geometry has no extent in that CRS.
    """


    crs_text = _crs_text(crs_epsg)
    geom = to_crs(geometry, crs_text)
    if geom.is_empty:
        return None
    a, e = lattice.a, lattice.e
    x0, y0, x1, y1 = geom.bounds
    # a virtual image on the same lattice, one pixel larger than the AOI on every side
    col0 = math.floor((min(x0, x1) - lattice.c) / a) - 1 if a > 0 else math.floor((max(x0, x1) - lattice.c) / a) - 1
    row0 = math.floor((max(y0, y1) - lattice.f) / e) - 1 if e < 0 else math.floor((min(y0, y1) - lattice.f) / e) - 1
    origin_x, origin_y = lattice * (col0, row0)
    virtual = Affine(a, lattice.b, origin_x, lattice.d, e, origin_y)
    width = int(math.ceil(abs((x1 - x0) / a))) + 3
    height = int(math.ceil(abs((y1 - y0) / e))) + 3

    # what rasterio's window functions read of a dataset
    image = SimpleNamespace(transform=virtual, width=width, height=height, shape=(height, width))
    try:
        window = geometry_window(image, [geom])
    except WindowError:
        return None
    if window.width <= 0 or window.height <= 0:
        return None
    return GeoBox((int(window.height), int(window.width)), window_transform(window, virtual), CRS(crs_text))


_EDGE_TOLERANCE = 1e-6
"""Pixel-coordinate noise below which an image edge counts as on a grid pixel edge."""

AOI_COUNT_STRIP = 1 << 22
"""Pixels per strip when :func:`aoi_pixel_count` rasterizes a grid it must not allocate."""
AOI_COUNT_EXACT = 1 << 28
"""Grids up to this many pixels are counted exactly (about a second); larger ones by area."""


EDGE_POINTS = 256
"""Points per edge when an image's outline is projected into another CRS (curved edges)."""


def pixel_bounds(gbox: GeoBox, transform: Affine, shape: tuple[int, int], crs: Any) -> tuple[float, float, float, float] | None:
    """``(row0, col0, row1, col1)``: where an image (``transform``, ``(height, width)``, ``crs``)
    lies in ``gbox``'s pixel coordinates, unclipped. Same CRS: its corners, exactly. Another CRS:
    the bounding box of its outline projected with :data:`EDGE_POINTS` points per edge (spaced
    in the image's own units), widened by a pixel for the curvature between them. None when
    the outline does not project to finite coordinates (a grid reaching the poles)."""
    h, w = shape
    if h <= 0 or w <= 0:
        return None
    box = GeoBox((h, w), transform, CRS(_crs_text(crs)))
    to_pixel = ~gbox.affine
    if box.crs == gbox.crs:
        px = [to_pixel * (transform * (c, r)) for c in (0, w) for r in (0, h)]
        margin = 0.0
    else:
        spacing = max(abs(transform.a) * w, abs(transform.e) * h) / EDGE_POINTS
        try:
            outline = box.extent.to_crs(gbox.crs, resolution=max(spacing, min(abs(transform.a), abs(transform.e))))
        except Exception:  # noqa: BLE001 - pyproj/shapely failures mean "cannot place it": the caller decides
            return None
        if outline.is_empty:
            return None
        x0, y0, x1, y1 = outline.boundingbox
        px = [to_pixel * xy for xy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))]
        margin = 1.0
    rows, cols = [p[1] for p in px], [p[0] for p in px]
    if not all(math.isfinite(v) for v in rows + cols):
        return None
    return min(rows) - margin, min(cols) - margin, max(rows) + margin, max(cols) + margin


def crop_to_extents(gbox: GeoBox, extents: Iterable[tuple[Affine, tuple[int, int], str]]) -> GeoBox | None:
    """``gbox`` cut to the bounding box of ``extents`` (``(transform, (height, width), crs)`` of
    each image window that can contribute), snapped outward to ``gbox``'s pixels.

    This is ``rasterio.mask.mask(crop=True)`` on a mosaic (a VRT) of those images: the AOI's
    window intersected with the images' extent, so an AOI far larger than the scenes under it
    costs the scenes' pixels, not its own. An extent in another CRS is projected
    (:func:`pixel_bounds`); one that cannot be placed keeps the whole grid. ``None`` when no
    extent meets ``gbox``.
    """
    height, width = gbox.shape.yx
    rows, cols = [], []
    for transform, shape, crs in extents:
        bounds = pixel_bounds(gbox, transform, shape, crs)
        if bounds is None and min(shape) > 0:
            return gbox  # cannot place this image: do not cut what it may cover
        if bounds is not None:
            rows += [bounds[0], bounds[2]]
            cols += [bounds[1], bounds[3]]
    if not rows:
        return None
    r0 = max(0, math.floor(min(rows) + _EDGE_TOLERANCE))
    c0 = max(0, math.floor(min(cols) + _EDGE_TOLERANCE))
    r1 = min(height, math.ceil(max(rows) - _EDGE_TOLERANCE))
    c1 = min(width, math.ceil(max(cols) - _EDGE_TOLERANCE))
    if r1 <= r0 or c1 <= c0:
        return None
    if (r0, c0, r1, c1) == (0, 0, height, width):
        return gbox
    return gbox[r0:r1, c0:c1]


def aoi_pixel_count(gbox: GeoBox, geometry: BaseGeometry) -> int:
    """How many pixel centres of ``gbox`` lie inside ``geometry`` (lon/lat), as
    :func:`inside_mask` would count them, rasterized in strips so the grid is never allocated
    whole (an AOI's uncut grid can be far larger than its mosaic). A grid over
    :data:`AOI_COUNT_EXACT` pixels (a country-sized AOI at 10 m) is counted as the geometry's
    area in pixels: off by about its perimeter in pixels, a negligible share at that size."""

    geom = to_crs(geometry, geobox_crs(gbox))
    height, width = gbox.shape.yx
    if height * width > AOI_COUNT_EXACT:
        a = gbox.affine
        return int(round(geom.area / abs(a.a * a.e - a.b * a.d)))
    rows = max(1, AOI_COUNT_STRIP // max(1, width))
    total = 0
    for r0 in range(0, height, rows):
        strip = gbox[r0:min(height, r0 + rows), :]
        total += int((~geometry_mask([geom], out_shape=strip.shape.yx, transform=strip.affine,
                                     all_touched=False)).sum())
    return total


def geobox_epsg(gbox: GeoBox) -> int:
    """The EPSG code of a grid's CRS (:class:`GridError` when it has none)."""
    epsg = gbox.crs.epsg if gbox.crs is not None else None
    if epsg is None:
        raise GridError(f"grid CRS {gbox.crs} has no EPSG code")
    return int(epsg)


def _aligned_offset(src: Affine, dst: Affine) -> tuple[int, int] | None:
    """``(row, col)`` of ``dst``'s first pixel in ``src``'s pixel grid when both grids have the
    same pixel size and ``dst`` starts on a ``src`` pixel edge; None otherwise. A centre then
    falls mid-pixel, so the nearest pick is exact whatever the floating-point noise."""
    if src.a != dst.a or src.e != dst.e:
        return None
    col, row = (dst.c - src.c) / src.a, (dst.f - src.f) / src.e
    rc, rr = round(col), round(row)
    if abs(col - rc) > 1e-6 or abs(row - rr) > 1e-6:
        return None
    return int(rr), int(rc)


def _paste(data: "np.ndarray", offset: tuple[int, int], shape: tuple[int, int], fill: float):
    """``(values, has)`` of :func:`sample_nearest` for a grid ``offset`` whole pixels into ``data``'s.
    When the grid is exactly ``data``'s, ``values`` is ``data`` itself (not copied: read it only)."""
    row, col = offset
    height, width = shape
    if (row, col) == (0, 0) and data.shape == (height, width):
        return data, np.ones(shape, dtype=bool)
    values = np.full(shape, fill, dtype=data.dtype)
    has = np.zeros(shape, dtype=bool)
    r0, c0 = max(0, -row), max(0, -col)  # first output row/col the data reaches
    r1, c1 = min(height, data.shape[0] - row), min(width, data.shape[1] - col)
    if r1 > r0 and c1 > c0:
        values[r0:r1, c0:c1] = data[r0 + row:r1 + row, c0 + col:c1 + col]
        has[r0:r1, c0:c1] = True
    return values, has


def inside_mask(gbox: GeoBox, geometry: BaseGeometry) -> "np.ndarray":
    """True where a pixel centre of ``gbox`` lies inside ``geometry`` (lon/lat), as rasterio.mask."""


    geom = to_crs(geometry, geobox_crs(gbox))
    return ~geometry_mask([geom], out_shape=gbox.shape.yx, transform=gbox.affine, all_touched=False)


def sample_nearest(data: "np.ndarray", transform: Affine, crs_epsg: int | str, gbox: GeoBox,
                   fill: float) -> tuple["np.ndarray", "np.ndarray"]:
    """``data`` (a 2-D array on ``transform`` in that CRS: EPSG code, ``"EPSG:n"`` or WKT) brought onto ``gbox`` by
    nearest neighbour: ``(values, has)`` where ``has`` is False for pixels the array does not
    cover (they hold ``fill``). A grid aligned with the array's is a copy of its pixels (the array
    itself when the grids are equal: treat ``values`` as read-only). Same CRS: exact index mapping of pixel centres (Sentinel-2's
    20 m SCL under its 10 m bands); another CRS: ``rasterio.warp.reproject`` nearest.
    """

    height, width = gbox.shape.yx
    dst = gbox.affine
    src_crs, dst_crs = _crs_text(crs_epsg), geobox_crs(gbox)
    same_crs = src_crs == dst_crs or CRS(src_crs) == gbox.crs
    if same_crs and transform.b == transform.d == dst.b == dst.d == 0:
        aligned = _aligned_offset(transform, dst)
        if aligned is not None:  # the same pixels, shifted by whole pixels: copy, no index arrays
            return _paste(data, aligned, (height, width), fill)
        # the pixel under each centre, as load picks it (one rule: raster.nearest)
        iy, ix = nearest_source_pixels(dst, dst_crs, (0, height), (0, width), transform, dst_crs, data.shape)
        return take_nearest(data, (0, data.shape[0], 0, data.shape[1]), iy, ix, fill)

    values = np.full((height, width), fill, dtype=data.dtype)
    reproject(data, values, src_transform=transform, src_crs=src_crs, dst_transform=dst,
              dst_crs=dst_crs, resampling=Resampling.nearest)
    cover = np.zeros((height, width), dtype=np.uint8)
    reproject(np.ones(data.shape, dtype=np.uint8), cover, src_transform=transform, src_crs=src_crs,
              dst_transform=dst, dst_crs=dst_crs, resampling=Resampling.nearest)
    return values, cover.astype(bool)
