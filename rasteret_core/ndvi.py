"""NDVI from red and near-infrared reflectance, with cloud masks, per AOI and scene.

Reflectance is ``raw * scale + offset`` (STAC ``raster:bands``; Sentinel-2 L2A since
baseline 04.00: 0.0001 and -0.1). Pixels are NaN where either band is nodata, where the
cloud mask flags them, where ``nir + red`` is zero, or where the result falls outside
[-1, 1] (possible only for negative reflectances, which are not physical).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from affine import Affine
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.collection.scene import Scene
from rasteret_core.read.aoi import AoiRaster, ReadFailure, read_aois
from rasteret_core.read.windows import regrid_nearest

SCL_MASKED_CLASSES = (0, 1, 3, 8, 9, 10)
"""Sentinel-2 SCL classes masked: no data, saturated/defective, cloud shadow, cloud medium
and high probability, thin cirrus. Snow (11), water (6) and bare soil (5) stay: NDVI is
meaningful (if low) there."""

QA_PIXEL_MASKED_BITS = (0, 1, 2, 3, 4)
"""Landsat C2 QA_PIXEL bits masked: fill, dilated cloud, cirrus, cloud, cloud shadow."""


def scl_cloud_mask(scl: np.ndarray) -> np.ndarray:
    """True where a Sentinel-2 SCL pixel must be masked."""
    return np.isin(scl, SCL_MASKED_CLASSES)


def qa_pixel_cloud_mask(qa: np.ndarray) -> np.ndarray:
    """True where any masked Landsat QA_PIXEL bit is set."""
    bits = sum(1 << b for b in QA_PIXEL_MASKED_BITS)
    return (qa.astype(np.uint32) & bits) != 0


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
    """NDVI of one scene over one AOI (float32, NaN outside the AOI and where masked)."""

    geometry_id: str
    scene_id: str
    datetime: dt.datetime
    data: np.ndarray
    transform: Affine
    crs_epsg: int

    @property
    def valid_pixels(self) -> int:
        return int(np.isfinite(self.data).sum())


@dataclass
class NdviResult:
    rasters: list[NdviRaster] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)


def aoi_ndvi(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    *,
    red: str,
    nir: str,
    mask: str | None = None,
    mask_kind: str = "scl",
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    **read_kwargs: Any,
) -> NdviResult:
    """NDVI per (AOI, scene) from a collection's scenes, through the core reader.

    ``mask`` names the cloud-mask band (``SCL`` with ``mask_kind="scl"``, ``QA_PIXEL`` with
    ``"qa_pixel"``); it is brought to the red band's grid by nearest neighbour.
    """
    bands = [red, nir] + ([mask] if mask else [])
    # masks keep their values outside the AOI: a 20 m mask pixel can straddle the AOI edge
    read = read_aois(scenes, geometries, bands, reader_options=reader_options, stats=stats, fill_outside=False,
                     **read_kwargs)
    result = NdviResult(failures=read.failures, stats=read.stats)
    by_key: dict[tuple[str, str], dict[str, AoiRaster]] = {}
    for raster in read.rasters:
        by_key.setdefault((raster.geometry_id, raster.scene_id), {})[raster.band] = raster
    masker = scl_cloud_mask if mask_kind == "scl" else qa_pixel_cloud_mask
    for (gid, scene_id), got in sorted(by_key.items()):
        if red not in got or nir not in got:
            continue  # the failure of the missing band is already reported
        r, n = got[red], got[nir]
        if r.data.shape != n.data.shape or r.transform != n.transform:
            n_data = regrid_nearest(n.data, n.transform, r.data.shape, r.transform, n.fill)
        else:
            n_data = n.data
        cloud = r.outside.copy()
        if mask and mask in got:
            m = got[mask]
            cloud |= masker(regrid_nearest(m.data, m.transform, r.data.shape, r.transform, 0))
        elif mask:
            cloud[:] = True  # no mask could be read: trust nothing rather than cloudy pixels
        values = ndvi(
            r.data, n_data, red_scale=r.scale, red_offset=r.offset, nir_scale=n.scale, nir_offset=n.offset,
            red_nodata=r.nodata, nir_nodata=n.nodata, cloud_mask=cloud,
        )
        result.rasters.append(NdviRaster(gid, scene_id, r.datetime, values, r.transform, r.crs_epsg))
    return result


def preview_png(data: np.ndarray, max_size: int = 256) -> bytes:
    """A small PNG of an NDVI array (brown-to-green ramp, masked pixels transparent)."""
    import imagecodecs

    step = max(1, int(np.ceil(max(data.shape) / max_size)))
    small = data[::step, ::step]
    t = np.clip((np.nan_to_num(small, nan=0.0) + 1.0) / 2.0, 0.0, 1.0)
    rgba = np.zeros(small.shape + (4,), dtype=np.uint8)
    rgba[..., 0] = (166 * (1 - t) + 26 * t).astype(np.uint8)
    rgba[..., 1] = (97 * (1 - t) + 150 * t).astype(np.uint8)
    rgba[..., 2] = (26 * (1 - t) + 65 * t).astype(np.uint8)
    rgba[..., 3] = np.where(np.isfinite(small), 255, 0).astype(np.uint8)
    return bytes(imagecodecs.png_encode(rgba))
