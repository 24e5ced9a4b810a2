"""One mosaic per AOI and date: the scenes of a solar day merged onto one grid.

Conventions (the same for ``get_xarray``, ``aoi_ndvi`` and the ``ndvi`` assets):

- **Grouping**: scenes of the same solar day form one time step (odc-stac's
  ``groupby="solar_day"``: the UTC acquisition time shifted by the footprint centroid's
  longitude / 15 hours). ``groupby="time"`` keeps every acquisition instant apart; ``None``
  puts all scenes given into one step.
- **Grid**: the CRS of the scenes covering most of the AOI
  (:func:`rasteret_core.raster.grid.crs_of_largest_overlap`), the pixel lattice and resolution of the
  finest requested band stored in that CRS, and the extent ``rasterio.mask(crop=True)`` gives
  the AOI on a mosaic (VRT) of the images read: the AOI's window
  (:func:`rasteret_core.raster.grid.aoi_geobox`) cut to the bounding box of those images' windows
  (:func:`rasteret_core.raster.grid.crop_to_extents`), so a degree-wide AOI around one scene
  costs that scene's pixels. Scenes in another CRS (the next UTM zone) are brought onto it by
  nearest neighbour.
- **Masks** (SCL, QA_PIXEL) and coarser bands are brought onto that grid by nearest neighbour
  *before* the AOI clip, so a 20 m mask pixel straddling the AOI edge keeps its class.
- **Order**: first valid pixel wins, scenes taken by least cloud cover first (unknown cloud
  cover last), then by scene id. A pixel comes from one scene for all bands.
- **Valid**: inside the scene's image, not nodata in every requested data band and, with
  ``mask_clouds``, not flagged by the cloud mask (a scene whose mask could not be read is not
  valid anywhere). **Covered**: inside some scene's image with data (clouds allowed).
- Pixels outside the AOI (pixel centre outside, as rasterio.mask) hold the band's fill:
  nodata for raw values, NaN for physical ones. ``aoi_pixels`` and ``coverage`` count the
  whole AOI, including its part beyond the cut grid (no scene covers it).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from odc.geo.geobox import GeoBox
from shapely.geometry.base import BaseGeometry

from rasteret_core import budget, radiometry
from rasteret_core.collection.scene import Scene
from rasteret_core.raster.grid import (
    aoi_geobox, aoi_pixel_count, crop_to_extents, crs_of_largest_overlap, geobox_crs, inside_mask,
    sample_nearest,
)
from rasteret_core.raster.grouping import group_key, mosaic_order
from rasteret_core.raster.masks import MASK_BANDS, mask_function
from rasteret_core.read.aoi import AoiRaster

@dataclass
class AoiMosaic:
    """One AOI x one time step: every requested band on one grid.

    ``bands`` hold raw values (``fill`` outside/invalid) or, with ``physical``, float32
    physical values (NaN). ``source`` is the index into ``scene_ids`` each pixel came from
    (-1: none). ``rules`` holds the radiometry (scale, offset, rule) per band when one rule
    applies to every contributing scene, else ``None``.
    """

    geometry_id: str
    key: Any
    time: dt.datetime
    gbox: GeoBox
    bands: dict[str, np.ndarray]
    fill: dict[str, float]
    scene_ids: list[str]
    source: np.ndarray
    inside: np.ndarray
    covered: np.ndarray
    rules: dict[str, tuple[float | None, float | None, str | None] | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    aoi_pixel_count: int | None = None
    """The AOI's pixels on the uncut grid (None: the grid is not cut, count ``inside``)."""

    @property
    def aoi_pixels(self) -> int:
        """The AOI's pixels on its whole window, also those beyond the cut grid."""
        return int(self.inside.sum()) if self.aoi_pixel_count is None else self.aoi_pixel_count

    @property
    def coverage(self) -> float:
        """Fraction of the AOI's pixels covered by any scene (with data)."""
        if not self.aoi_pixels:
            return 0.0
        return min(1.0, float(self.covered[self.inside].sum() / self.aoi_pixels))  # the count may be by area

    @property
    def crs_epsg(self) -> int | None:
        """The grid's EPSG code (None for a CRS known only as WKT: see :attr:`crs`)."""
        return self.gbox.crs.epsg

    @property
    def crs(self) -> str:
        return geobox_crs(self.gbox)


def target_geobox(geometry: BaseGeometry, scenes: list[Scene], rasters: list[AoiRaster], bands: list[str],
                  wholes: dict[Any, GeoBox | None] | None = None) -> GeoBox | None:
    """The mosaic grid of one AOI over ``scenes`` (see the module doc), from the rasters read.
    ``wholes``: a cache of the AOI's uncut grid per lattice, shared by one geometry's time steps."""
    data_bands = [b for b in bands if b not in MASK_BANDS] or list(bands)
    ref_band = data_bands[0]
    crs = crs_of_largest_overlap(scenes, ref_band, geometry)
    order = {s.id: i for i, s in enumerate(mosaic_order(scenes))}
    candidates = [r for r in rasters if r.band in data_bands and _same_crs(r.crs, crs)]
    if not candidates:
        return None
    finest = min(candidates, key=lambda r: (abs(r.transform.a), order.get(r.scene_id, 0)))
    whole = _whole_grid(geometry, finest.crs, finest.transform, wholes)
    if whole is None:
        return None
    return crop_to_extents(whole, [(r.transform, r.data.shape, r.crs) for r in rasters if r.band in data_bands])


def _whole_grid(geometry: BaseGeometry, crs: Any, lattice: Any, wholes: dict[Any, GeoBox | None] | None) -> GeoBox | None:
    """:func:`aoi_geobox`, remembered in ``wholes`` (the dates of one AOI share their lattices)."""
    key = (str(crs), tuple(lattice)[:6])
    if wholes is None or key not in wholes:
        whole = aoi_geobox(geometry, crs, lattice)
        if wholes is None:
            return whole
        wholes[key] = whole
    return wholes[key]


def _uncut_pixel_count(gbox: GeoBox, geometry: BaseGeometry, wholes: dict[Any, GeoBox | None] | None = None) -> int | None:
    """The AOI's pixel count on its whole window when ``gbox`` is a cut of it, else None."""
    whole = _whole_grid(geometry, gbox.crs, gbox.affine, wholes)
    if whole is None or whole == gbox:
        return None
    return aoi_pixel_count(whole, geometry)


def _same_crs(text: str, crs: Any) -> bool:
    from odc.geo import CRS

    return bool(text) and (text == f"EPSG:{crs.epsg}" or CRS(text) == crs)


def mosaic_aoi(
    geometry_id: str,
    geometry: BaseGeometry,
    scenes: list[Scene],
    rasters: list[AoiRaster],
    bands: list[str],
    *,
    gbox: GeoBox | None = None,
    key: Any = None,
    physical: bool = False,
    mask: str | None = None,
    mask_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    mask_clouds: bool = False,
    inside_masks: dict[Any, tuple[np.ndarray, int | None]] | None = None,
    wholes: dict[Any, GeoBox | None] | None = None,
) -> AoiMosaic | None:
    """Merge one AOI's rasters of one time step (all from ``scenes``) onto one grid.

    ``rasters`` must be read with ``fill_outside=False`` (values kept outside the AOI).
    ``mask``/``mask_fn`` name the cloud-mask band and what it flags; with ``mask_clouds``
    flagged pixels are not valid, so the next scene's clear pixel wins. Returns ``None`` when
    no raster overlaps the AOI. ``inside_masks``: a cache of the geometry's pixel mask (and
    uncut pixel count) per grid, shared by the time steps of one geometry (their grids are
    usually the same); ``wholes`` likewise caches the AOI's uncut grid per lattice.
    """
    if not rasters:
        return None
    gbox = gbox or target_geobox(geometry, scenes, rasters, bands, wholes)
    if gbox is None:
        return None
    shape = gbox.shape.yx
    present = {r.band for r in rasters}
    pixels = int(shape[0]) * int(shape[1])
    per_pixel = sum(max(r.data.dtype.itemsize, 4 if physical else 0) for r in {r.band: r for r in rasters}.values())
    budget.check(pixels * (per_pixel + 3), pixels=pixels,  # + the inside, taken and covered masks
                 what=f"the mosaic of {geometry_id!r} ({shape[0]} x {shape[1]}, {len(present)} band(s))",
                 alternative="use load(..., chunks=...), which streams, or smaller AOIs")
    grid_key = (tuple(gbox.shape.yx), tuple(gbox.affine)[:6], str(gbox.crs))
    cached = inside_masks.get(grid_key) if inside_masks is not None else None
    if cached is None:
        inside = inside_mask(gbox, geometry)
        inside.flags.writeable = False  # shared by the steps on this grid
        cached = (inside, _uncut_pixel_count(gbox, geometry, wholes))
        if inside_masks is not None:
            inside_masks[grid_key] = cached
    inside, uncut_pixels = cached
    bands = [b for b in bands if b in present]  # a band no scene has is left out, as the read warned
    data_bands = [b for b in bands if b not in MASK_BANDS and b != mask] or list(bands)
    by_scene: dict[str, dict[str, AoiRaster]] = defaultdict(dict)
    for r in rasters:
        by_scene[r.scene_id][r.band] = r
    ordered = [s for s in mosaic_order(scenes) if s.id in by_scene]

    fills: dict[str, float] = {}
    out: dict[str, np.ndarray] = {}
    scaled: dict[str, bool] = {}
    for band in bands:
        example = next((by_scene[s.id][band] for s in ordered if band in by_scene[s.id]), None)
        asset_scaled = any(s.bands.get(band) is not None and s.bands[band].scale is not None for s in ordered)
        scaled[band] = physical and asset_scaled and band not in MASK_BANDS and band != mask
        if scaled[band]:
            fills[band], dtype = float("nan"), np.float32
        else:
            fills[band] = example.fill if example is not None else 0
            dtype = example.data.dtype if example is not None else np.uint16
        out[band] = np.full(shape, fills[band], dtype=dtype)
    taken = np.zeros(shape, dtype=bool)
    covered = np.zeros(shape, dtype=bool)
    source = np.full(shape, -1, dtype=np.int16)
    warnings: list[str] = []
    rules: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    scene_ids: list[str] = []

    for scene in ordered:
        got = by_scene[scene.id]
        values: dict[str, np.ndarray] = {}
        data_valid = np.ones(shape, dtype=bool)
        cloud_ok = np.ones(shape, dtype=bool)
        for band in bands:
            raster = got.get(band)
            if raster is None:
                if band in data_bands:
                    data_valid[:] = False
                elif band == mask and mask_clouds:
                    cloud_ok[:] = False  # no mask could be read: trust nothing rather than cloudy pixels
                continue
            raw, has = sample_nearest(raster.data, raster.transform, raster.crs, gbox, raster.fill)
            ok = has.copy()
            if raster.nodata is not None:
                ok &= ~np.isnan(raw) if np.isnan(raster.nodata) else raw != raster.nodata
            elif raw.dtype.kind == "f":
                ok &= ~np.isnan(raw)
            asset = scene.bands.get(band)
            rule = (asset.scale, asset.offset, asset.rule) if asset is not None else (None, None, None)
            rules[band].add(rule)
            v = raw
            if band not in MASK_BANDS and band != mask and rule[0] is not None:
                phys = radiometry.to_physical(raw, rule[0], rule[1], raster.nodata)
                phys[~ok] = np.nan
                warning = radiometry.check_plausible(phys, scene_id=scene.id, band=band, rule=rule[2], where=inside)
                if warning:
                    warnings.append(warning)
                if scaled[band]:
                    v = phys
            if band in data_bands:
                data_valid &= ok
            elif band == mask and mask_clouds and mask_fn is not None:
                cloud_ok &= has & ~mask_fn(raw)
            values[band] = v
        here = data_valid & inside
        if not here.any():
            continue
        covered |= here
        take = here & cloud_ok & ~taken
        index = len(scene_ids)
        scene_ids.append(scene.id)
        for band, v in values.items():
            np.copyto(out[band], v, where=take, casting="unsafe")
        source[take] = index
        taken |= take

    for band in bands:
        out[band][~inside] = fills[band]
    single = {b: (next(iter(r)) if len(r) == 1 else None) for b, r in rules.items()}
    when = min((s.datetime for s in ordered), default=None)
    return AoiMosaic(geometry_id, key, when, gbox, out, fills, scene_ids, source, inside, covered, single, warnings,
                     aoi_pixel_count=uncut_pixels)


def mosaic_groups(
    geometry_id: str,
    geometry: BaseGeometry,
    scenes: list[Scene],
    rasters: list[AoiRaster],
    bands: list[str],
    *,
    groupby: Any = "solar_day",
    gbox: GeoBox | None = None,
    mask: str | None = None,
    mask_kind: str | None = None,
    physical: bool = False,
    mask_clouds: bool = False,
) -> list[AoiMosaic]:
    """One geometry's rasters grouped into time steps (:func:`~rasteret_core.raster.grouping.group_key`),
    each step merged by :func:`mosaic_aoi` (on ``gbox``, or each step's own grid), in time order.
    Steps whose rasters do not overlap the geometry are left out."""
    by_id = {s.id: s for s in scenes}
    groups: dict[Any, list[AoiRaster]] = defaultdict(list)
    for r in rasters:
        groups[group_key(by_id[r.scene_id], groupby)].append(r)
    masker = mask_function(mask, mask_kind) if mask is not None else None
    inside_masks: dict[Any, tuple[np.ndarray, int | None]] = {}  # one geometry: its mask per grid, once
    wholes: dict[Any, GeoBox | None] = {}  # ...and its uncut grid per lattice
    mosaics = []
    for key, members in groups.items():
        members_scenes = [by_id[i] for i in dict.fromkeys(r.scene_id for r in members)]
        m = mosaic_aoi(geometry_id, geometry, members_scenes, members, bands, gbox=gbox, key=key, physical=physical,
                       mask=mask, mask_fn=masker, mask_clouds=mask_clouds, inside_masks=inside_masks, wholes=wholes)
        if m is not None:
            mosaics.append(m)
    mosaics.sort(key=lambda m: (m.time, str(m.key)))
    return mosaics
