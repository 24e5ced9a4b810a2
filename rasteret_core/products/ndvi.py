"""NDVI from red and near-infrared reflectance, with cloud masks, per AOI and date.

Reflectance is ``DN * scale + offset`` with the rule stored per scene and band at harvest
(:mod:`rasteret_core.radiometry`). :func:`aoi_ndvi` gives one NDVI raster per AOI and solar
day: the day's scenes mosaicked as :mod:`rasteret_core.read.mosaic` documents (least cloud
first, first valid pixel wins, valid = inside the scene, not nodata, not cloud-masked).
Pixels are NaN where no scene is valid, where ``nir + red`` is zero, or where the result falls
outside [-1, 1] (possible only for negative reflectances, which are not physical).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from affine import Affine
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.collection.scene import Scene
from rasteret_core.raster.masks import mask_function
from rasteret_core.read.aoi import AoiRaster, read_aois, ReadFailure, recording
from rasteret_core.read.mosaic import mosaic_groups

log = logging.getLogger(__name__)

def ndvi(
    red: np.ndarray,
    nir: np.ndarray,
    *,
    red_scale: float | None = None,
    red_offset: float | None = None,
    nir_scale: float | None = None,
    nir_offset: float | None = None,
    red_nodata: float | None = None,
    nir_nodata: float | None = None,
    cloud_mask: np.ndarray | None = None,
) -> np.ndarray:
    """``(nir - red) / (nir + red)`` on reflectances, float32, NaN where not valid."""
    r = red.astype(np.float64) * (1.0 if red_scale is None else red_scale) + (red_offset or 0.0)
    n = nir.astype(np.float64) * (1.0 if nir_scale is None else nir_scale) + (nir_offset or 0.0)
    invalid = np.zeros(red.shape, dtype=bool)
    if red_nodata is not None:
        invalid |= (red == red_nodata) | (np.isnan(red_nodata) & np.isnan(red) if red.dtype.kind == "f" else False)
    if nir_nodata is not None:
        invalid |= (nir == nir_nodata) | (np.isnan(nir_nodata) & np.isnan(nir) if nir.dtype.kind == "f" else False)
    if cloud_mask is not None:
        invalid |= cloud_mask
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (n - r) / (n + r)
    invalid |= ~np.isfinite(out) | (out < -1.0) | (out > 1.0)
    out[invalid] = np.nan
    return out.astype(np.float32)


@dataclass
class NdviRaster:
    """NDVI of one AOI and one date (float32, NaN outside the AOI and where not valid).

    ``scene_ids`` are the scenes with data in the AOI, in mosaic order; ``aoi_pixels`` the
    AOI's pixels on this grid, ``covered_pixels`` those with data from any scene.
    """

    geometry_id: str
    scene_id: str
    datetime: dt.datetime
    data: np.ndarray
    transform: Affine
    crs_epsg: int | None
    scene_ids: list[str] = field(default_factory=list)
    inside: np.ndarray | None = None
    covered_pixels: int = 0
    key: Any = None
    crs_wkt: str | None = None
    """The CRS as WKT when it has no EPSG code."""
    covered: np.ndarray | None = None
    """The pixels some scene covered (with data, cloudy or not): tells clouds from no data."""
    aoi_pixel_count: int | None = None
    """The AOI's pixels on its whole window when the grid is cut to the scenes (else None)."""

    @property
    def valid_pixels(self) -> int:
        return int(np.isfinite(self.data).sum())

    @property
    def aoi_pixels(self) -> int:
        """The AOI's pixels, also those beyond the grid (cut to where scenes contribute)."""
        if self.aoi_pixel_count is not None:
            return self.aoi_pixel_count
        return int(self.inside.sum()) if self.inside is not None else int(self.data.size)


@dataclass
class NdviResult:
    rasters: list[NdviRaster] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    warnings: list[str] = field(default_factory=list)


def aoi_ndvi(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    *,
    red: str,
    nir: str,
    mask: str | None = None,
    mask_kind: str = "scl",
    groupby: Any = "solar_day",
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    **read_kwargs: Any,
) -> NdviResult:
    """NDVI per AOI and time step (default: solar day) from a collection's scenes.

    ``mask`` names the cloud-mask band (``SCL`` with ``mask_kind="scl"``, ``QA_PIXEL`` with
    ``"qa_pixel"``); it is brought onto the red band's grid by nearest neighbour before the
    AOI clip. ``groupby=None`` makes all ``scenes`` one step (a pipeline partition's date).
    """

    return aoi_rasters(scenes, geometries, [red, nir],
                       lambda m: ndvi(m.bands[red], m.bands[nir], cloud_mask=m.source < 0),
                       mask=mask, mask_kind=mask_kind, groupby=groupby, reader_options=reader_options, stats=stats,
                       **read_kwargs)


def aoi_rasters(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    data_bands: list[str],
    compute: Callable[[Any], np.ndarray],
    *,
    mask: str | None = None,
    mask_kind: str = "scl",
    groupby: Any = "solar_day",
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    **read_kwargs: Any,
) -> NdviResult:
    """One float32 raster per AOI and time step: ``data_bands`` (and the cloud ``mask``) read
    under each geometry, each step's scenes mosaicked as reflectance (least cloud first, clouds
    masked), and ``compute(mosaic)`` (an :class:`~rasteret_core.read.mosaic.AoiMosaic`) turning
    the mosaic into the index. The shared body of :func:`aoi_ndvi` and ``indices.aoi_index``;
    a step missing one of ``data_bands`` yields no raster (its read failures are reported)."""
    bands = list(data_bands) + ([mask] if mask else [])
    scenes, stream = recording(scenes)  # an iterator streams into the read
    # masks keep their values outside the AOI: a 20 m mask pixel can straddle the AOI edge
    read = read_aois(stream, geometries, bands, reader_options=reader_options, stats=stats, fill_outside=False,
                     **read_kwargs)
    result = NdviResult(failures=read.failures, stats=read.stats)
    by_geometry: dict[str, list[AoiRaster]] = {}
    for raster in read.rasters:
        by_geometry.setdefault(raster.geometry_id, []).append(raster)
    for gid in sorted(by_geometry):
        for mosaic in mosaic_groups(gid, geometries[gid], scenes, by_geometry[gid], bands, groupby=groupby,
                                    mask=mask, mask_kind=mask_kind, physical=True, mask_clouds=mask is not None):
            result.warnings += mosaic.warnings
            if any(band not in mosaic.bands for band in data_bands):
                continue
            result.rasters.append(NdviRaster(
                gid, ",".join(mosaic.scene_ids), mosaic.time, compute(mosaic), mosaic.gbox.affine, mosaic.crs_epsg,
                scene_ids=mosaic.scene_ids, inside=mosaic.inside, covered_pixels=int(mosaic.covered.sum()),
                key=mosaic.key, crs_wkt=None if mosaic.crs_epsg is not None else mosaic.crs, covered=mosaic.covered,
                aoi_pixel_count=mosaic.aoi_pixel_count,
            ))
    for warning in result.warnings:
        log.warning("%s", warning)
    return result


def ndvi_of(ds, red: str = "B04", nir: str = "B08", mask: str | None = "SCL", mask_kind: str | None = None):
    """NDVI (float32, NaN where not valid) of a ``get_xarray`` Dataset, cloud mask applied.

    Works on physical (``reflectance=True``) and raw Datasets (CF ``scale_factor`` /
    ``add_offset`` decoded first). Ask ``get_xarray`` for ``mask_clouds=True`` so a cloudy
    pixel of one scene is replaced by a clear one of another scene of the same day; this
    helper then masks what stays cloudy. ``mask=None`` or a Dataset without it: no cloud mask.
    """
    import xarray as xr

    def reflectance(name: str):
        var = ds[name]
        if var.dtype.kind == "f":
            return var.astype("float32")
        decoded = xr.decode_cf(var.to_dataset(name=name))[name]
        return decoded.astype("float32")

    r, n = reflectance(red), reflectance(nir)
    out = ((n - r) / (n + r)).astype("float32")
    out = out.where((out >= -1.0) & (out <= 1.0))
    if mask is not None and mask in ds:
        flagged = xr.apply_ufunc(mask_function(mask, mask_kind), ds[mask])
        out = out.where(~flagged)
    out.attrs = {"long_name": "NDVI", "nodata": float("nan"), "grid_mapping": "spatial_ref"}
    return out.rename("ndvi")
