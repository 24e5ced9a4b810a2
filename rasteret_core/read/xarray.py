"""Assembling clipped AOI rasters into xarray Datasets (CF / rioxarray conventions).

Each geometry gets its own grid: the union of its crops in the finest band's pixel grid.
Coarser bands (Sentinel-2 SCL at 20 m) are brought onto it by nearest neighbour. Scenes
acquired at the same instant (neighbouring tiles of one overpass) are mosaicked into one
time step, first valid pixel wins.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np
import xarray as xr
from affine import Affine

from rasteret_core.errors import RasteretError
from rasteret_core.read.aoi import AoiRaster

MAX_SPARSE_FACTOR = 4.0
"""A stacked Dataset may hold at most this many times the pixels of its per-geometry parts..."""
SMALL_GRID = 250_000
"""...unless it is this small anyway (about 5 x 5 km at 10 m)."""


@lru_cache(maxsize=64)
def _crs_wkt(epsg: int) -> str:
    from rasterio.crs import CRS

    return CRS.from_epsg(epsg).to_wkt()


def spatial_ref(epsg: int | None, transform: Affine, wkt: str | None = None) -> xr.DataArray:
    """A CF ``grid_mapping`` variable that rioxarray reads (``ds.rio.crs``); a CRS without an
    EPSG code is given by its ``wkt`` (and has no ``epsg`` attribute)."""
    wkt = _crs_wkt(epsg) if epsg is not None else wkt
    gdal = " ".join(str(v) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e))
    attrs = {"crs_wkt": wkt, "spatial_ref": wkt, "GeoTransform": gdal}
    if epsg is not None:
        attrs["epsg"] = epsg
    return xr.DataArray(0, attrs=attrs)


def geometry_dataset(rasters: list[AoiRaster], bands: list[str]) -> xr.Dataset:
    """One geometry's rasters (one CRS) as a Dataset with dims (time, y, x)."""
    epsg, wkt = rasters[0].crs_epsg, rasters[0].crs_wkt
    finest = min(rasters, key=lambda r: abs(r.transform.a))
    a, e = finest.transform.a, finest.transform.e
    ref = [r for r in rasters if abs(r.transform.a - a) < 1e-9 and abs(r.transform.e - e) < 1e-9]
    x0 = min(r.transform.c for r in ref)
    y0 = max(r.transform.f for r in ref)
    x1 = max(r.transform.c + r.data.shape[1] * a for r in ref)
    y1 = min(r.transform.f + r.data.shape[0] * e for r in ref)
    width, height = int(round((x1 - x0) / a)), int(round((y1 - y0) / e))
    grid = Affine(a, 0.0, x0, 0.0, e, y0)

    times = sorted({r.datetime for r in rasters})
    index = {t: i for i, t in enumerate(times)}
    scene_ids: dict[int, list[str]] = defaultdict(list)
    variables = {}
    for band in bands:
        of_band = [r for r in rasters if r.band == band]
        if not of_band:
            continue
        fill = of_band[0].fill
        dtype = of_band[0].data.dtype
        cube = np.full((len(times), height, width), fill, dtype=dtype)
        covered = np.zeros(cube.shape, dtype=bool)
        for r in of_band:
            t = index[r.datetime]
            if r.scene_id not in scene_ids[t]:
                scene_ids[t].append(r.scene_id)
            _paste(cube[t], covered[t], r, grid)
        attrs = {"nodata": fill, "grid_mapping": "spatial_ref"}
        if of_band[0].scale is not None:
            attrs.update(scale=of_band[0].scale, offset=of_band[0].offset or 0.0)
        variables[band] = (("time", "y", "x"), cube, attrs)
    coords = {
        "time": np.array([np.datetime64(t.replace(tzinfo=None), "ns") for t in times]),
        "y": y0 + (np.arange(height) + 0.5) * e,
        "x": x0 + (np.arange(width) + 0.5) * a,
        "scene_id": ("time", [",".join(scene_ids[i]) for i in range(len(times))]),
        "spatial_ref": spatial_ref(epsg, grid, wkt),
    }
    return xr.Dataset(variables, coords=coords, attrs={"crs": rasters[0].crs})


def _paste(target: np.ndarray, covered: np.ndarray, raster: AoiRaster, grid: Affine) -> None:
    """Nearest-neighbour paste of ``raster`` into ``target`` (first valid pixel wins)."""
    height, width = target.shape
    xs = grid.c + (np.arange(width) + 0.5) * grid.a
    ys = grid.f + (np.arange(height) + 0.5) * grid.e
    t = raster.transform
    cols = np.floor((xs - t.c) / t.a).astype(np.int64)
    rows = np.floor((ys - t.f) / t.e).astype(np.int64)
    col_ok = (cols >= 0) & (cols < raster.data.shape[1])
    row_ok = (rows >= 0) & (rows < raster.data.shape[0])
    if not col_ok.any() or not row_ok.any():
        return
    rsel, csel = np.nonzero(row_ok)[0], np.nonzero(col_ok)[0]
    src = raster.data[np.ix_(rows[rsel], cols[csel])]
    inside = ~raster.outside[np.ix_(rows[rsel], cols[csel])]
    view_t = target[np.ix_(rsel, csel)]
    view_c = covered[np.ix_(rsel, csel)]
    take = inside & ~view_c
    view_t[take] = src[take]
    view_c |= take
    target[np.ix_(rsel, csel)] = view_t
    covered[np.ix_(rsel, csel)] = view_c


def per_geometry_datasets(rasters: list[AoiRaster], bands: list[str]) -> dict[str, xr.Dataset]:
    """``{geometry id: Dataset}``; a geometry seen in several CRSs gets ``id@EPSG:code`` keys."""
    groups: dict[str, dict[str, list[AoiRaster]]] = defaultdict(lambda: defaultdict(list))
    for r in rasters:
        groups[r.geometry_id][r.crs].append(r)
    out = {}
    for gid, by_crs in groups.items():
        for crs, items in by_crs.items():
            key = gid if len(by_crs) == 1 else f"{gid}@{crs}"
            out[key] = geometry_dataset(items, bands)
    return out


def stack_datasets(datasets: dict[str, xr.Dataset]) -> xr.Dataset:
    """Stack per-geometry Datasets along ``geometry`` on their union grid.

    Refused (with advice) when the geometries use different CRSs or lie so far apart that the
    union grid would be mostly empty: use the per-geometry form then.
    """
    if not datasets:
        raise RasteretError("nothing was read: no scene intersects the geometries for these dates and bands")
    crss = {ds.attrs["crs"] for ds in datasets.values()}
    if len(crss) > 1:
        raise RasteretError(
            f"geometries fall in different CRSs ({', '.join(sorted(crss))}); use per_geometry=True"
        )
    first = next(iter(datasets.values()))
    _, a, _, _, _, e = (float(v) for v in first.spatial_ref.attrs["GeoTransform"].split())
    xs = _axis([ds.x.values for ds in datasets.values()], a)
    ys = _axis([ds.y.values for ds in datasets.values()], e)
    union = xs.size * ys.size
    parts = sum(ds.x.size * ds.y.size for ds in datasets.values())
    if union > MAX_SPARSE_FACTOR * parts and union > SMALL_GRID:
        raise RasteretError(
            f"the geometries are far apart: one grid would hold {union:,} pixels for {parts:,} read; "
            "use per_geometry=True to get one Dataset per geometry"
        )
    aligned = []
    for gid, ds in datasets.items():
        filled = {name: var.attrs.get("nodata", 0) for name, var in ds.data_vars.items()}
        aligned.append(ds.reindex(x=xs, y=ys, method="nearest", tolerance=abs(a) / 4, fill_value=filled)
                       .assign_coords(x=xs, y=ys).expand_dims(geometry=[gid]))
    stacked = xr.concat(aligned, dim="geometry", join="outer", coords="different", compat="equals", fill_value={n: v.attrs.get("nodata", 0) for n, v in first.data_vars.items()})
    grid = Affine(a, 0.0, float(xs[0]) - a / 2, 0.0, e, float(ys[0]) - e / 2)
    ref = first.spatial_ref.attrs
    epsg = int(ref["epsg"]) if "epsg" in ref else None
    stacked = stacked.assign_coords(spatial_ref=spatial_ref(epsg, grid, ref.get("crs_wkt")))
    stacked.attrs = dict(first.attrs)
    return stacked


def _axis(parts: list[np.ndarray], step: float) -> np.ndarray:
    """The full, regularly spaced axis spanning every part (parts share one pixel grid)."""
    start = min(p[0] for p in parts) if step > 0 else max(p[0] for p in parts)
    stop = max(p[-1] for p in parts) if step > 0 else min(p[-1] for p in parts)
    count = int(round((stop - start) / step)) + 1
    return start + np.arange(count) * step
