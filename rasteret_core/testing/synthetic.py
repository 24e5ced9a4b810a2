"""Sentinel-2-like scenes with production structure, for the demo and the benchmarks.

The COGs are what Earth Search serves: uint16 reflectance (scale 0.0001, offset -0.1) in
tiled, DEFLATE + horizontal-predictor COGs with overviews and nodata 0, plus a uint8 SCL
scene classification at half resolution. The content is procedural but field-like
(parcels with their own crop cycle, texture, a few clouds with SCL cloud classes, a nodata
corner like the edge of a swath), so compression ratios and NDVI values are realistic.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCALE, OFFSET = 0.0001, -0.1


@dataclass(frozen=True)
class TileGrid:
    """A UTM tile: EPSG code, upper-left corner, 10 m size in pixels."""

    epsg: int = 32643
    x0: float = 770000.0
    y0: float = 1450000.0
    size: int = 2048
    resolution: float = 10.0

    def transform(self, resolution: float | None = None):
        from affine import Affine

        res = resolution or self.resolution
        return Affine(res, 0.0, self.x0, 0.0, -res, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        extent = self.size * self.resolution
        return (self.x0, self.y0 - extent, self.x0 + extent, self.y0)


def _parcels(size: int, seed: int, parcel_px: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (phase, brightness) of field-like parcels, computed on a coarse grid."""
    rng = np.random.default_rng(seed)
    cells = -(-size // parcel_px)
    phase = rng.uniform(0, 2 * np.pi, (cells, cells)).astype(np.float32)
    bright = rng.uniform(0.06, 0.16, (cells, cells)).astype(np.float32)
    rep = lambda a: np.repeat(np.repeat(a, parcel_px, 0), parcel_px, 1)[:size, :size]  # noqa: E731
    return rep(phase), rep(bright)


def _clouds(size: int, rng: np.random.Generator, cover: float) -> np.ndarray:
    """Cloud opacity in [0, 1] with about ``cover`` percent of pixels cloudy."""
    coarse = max(4, size // 64)
    field = rng.random((coarse, coarse)).astype(np.float32)
    for _ in range(3):  # smooth into blobs
        field = (field + np.roll(field, 1, 0) + np.roll(field, -1, 0) + np.roll(field, 1, 1) + np.roll(field, -1, 1)) / 5
    threshold = np.quantile(field, 1 - cover / 100.0) if cover > 0 else np.inf
    up = np.repeat(np.repeat(field >= threshold, -(-size // coarse), 0), -(-size // coarse), 1)[:size, :size]
    return up.astype(np.float32)


def scene_arrays(grid: TileGrid, day_of_year: int, cloud_cover: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Red and NIR (uint16 DN, nodata 0) at 10 m and SCL (uint8) at 20 m for one date."""
    size = grid.size
    phase, bright = _parcels(size, seed)
    rng = np.random.default_rng(seed * 1000 + day_of_year)
    season = 0.5 + 0.4 * np.sin(2 * np.pi * day_of_year / 365.0 + phase)        # crop cycle per parcel
    texture = rng.normal(0, 0.02, (size, size)).astype(np.float32)
    ndvi = np.clip(season + texture, -0.2, 0.9)
    nir = bright * 2.2 * (1 + ndvi) / 2 + 0.02
    red = bright * 2.2 * (1 - ndvi) / 2 + 0.02
    cloud = _clouds(size, rng, cloud_cover)
    red = red * (1 - cloud) + 0.45 * cloud
    nir = nir * (1 - cloud) + 0.50 * cloud
    yy, xx = np.mgrid[0:size, 0:size]
    nodata = xx + yy < size // 6                                                  # swath edge
    to_dn = lambda refl: np.clip((refl - OFFSET) / SCALE, 1, 65535).astype(np.uint16)  # noqa: E731
    red_dn, nir_dn = to_dn(red), to_dn(nir)
    red_dn[nodata] = 0
    nir_dn[nodata] = 0
    scl = np.where(ndvi > 0.3, 4, 5).astype(np.uint8)                             # vegetation / bare soil
    scl[cloud > 0.5] = 9                                                          # cloud high probability
    scl[nodata] = 0
    return {"B04": red_dn, "B08": nir_dn, "SCL": scl[::2, ::2].copy()}


def write_s2_like_cog(path: str | Path, data: np.ndarray, grid: TileGrid, *, resolution: float, tile: int = 512) -> Path:
    """Write one band the way Sentinel-2 L2A COGs are written (DEFLATE, predictor 2, overviews)."""
    import rasterio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with rasterio.open(
        tmp, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
        crs=f"EPSG:{grid.epsg}", transform=grid.transform(resolution), nodata=0, compress="DEFLATE",
        predictor=2, blocksize=tile, overview_resampling="nearest",
    ) as dst:
        dst.write(data, 1)
    tmp.replace(path)
    return path


def write_scene(folder: str | Path, grid: TileGrid, when: dt.datetime, cloud_cover: float, *, seed: int = 0,
                tile: int = 512) -> dict[str, Path]:
    """The B04, B08 and SCL COGs of one date in ``folder`` (skipped when already there)."""
    folder = Path(folder)
    paths = {band: folder / f"{band}.tif" for band in ("B04", "B08", "SCL")}
    if all(p.exists() for p in paths.values()):
        return paths
    arrays = scene_arrays(grid, when.timetuple().tm_yday, cloud_cover, seed)
    for band, data in arrays.items():
        res = grid.resolution * (2 if band == "SCL" else 1)
        write_s2_like_cog(paths[band], data, grid, resolution=res, tile=tile)
    return paths


def s2_like_item(scene_id: str, when: dt.datetime, grid: TileGrid, cloud_cover: float, href_base: str,
                 platform: str = "sentinel-2a") -> dict:
    """An Earth-Search-like STAC item (``red``/``nir``/``scl`` assets) for a written scene."""
    from rasterio.warp import transform_geom
    import shapely

    left, bottom, right, top = grid.bounds
    footprint = transform_geom(f"EPSG:{grid.epsg}", "EPSG:4326", shapely.box(left, bottom, right, top).__geo_interface__)
    lons = [p[0] for p in footprint["coordinates"][0]]
    lats = [p[1] for p in footprint["coordinates"][0]]
    assets = {}
    for key, band, res in (("red", "B04", 10), ("nir", "B08", 10), ("scl", "SCL", 20)):
        size = grid.size * 10 // res
        raster = {"nodata": 0, "data_type": "uint8" if band == "SCL" else "uint16", "spatial_resolution": res}
        if band != "SCL":
            raster.update(scale=SCALE, offset=OFFSET)
        t = grid.transform(res)
        assets[key] = {
            "href": f"{href_base.rstrip('/')}/{scene_id}/{band}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "proj:shape": [size, size],
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "raster:bands": [raster],
        }
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": "sentinel-2-l2a",
        "geometry": footprint, "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "platform": platform, "constellation": "sentinel-2",
            "eo:cloud_cover": cloud_cover, "proj:epsg": grid.epsg, "s2:processing_baseline": "05.10",
        },
        "links": [], "assets": assets, "stac_extensions": [],
    }
