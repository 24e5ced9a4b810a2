"""Assembling clipped AOI rasters into xarray Datasets (CF / rioxarray conventions).

Each geometry gets one grid (the CRS of largest overlap, the finest band's lattice, the AOI's
rasterio.mask extent); the scenes of one solar day are mosaicked into one time step, first
valid pixel wins, least cloud first (:mod:`rasteret_core.read.mosaic`). Masks and coarser bands
(Sentinel-2 SCL at 20 m) are brought onto the grid by nearest neighbour before the AOI clip.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import xarray as xr
from affine import Affine

from shapely.geometry.base import BaseGeometry

from rasteret_core import radiometry
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import RasteretError
from rasteret_core.raster.grid import geobox_crs
from rasteret_core.read.aoi import AoiRaster
from rasteret_core.read.mosaic import mosaic_groups, target_geobox

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


def geometry_dataset(
    geometry_id: str,
    geometry: BaseGeometry,
    scenes: list[Scene],
    rasters: list[AoiRaster],
    bands: list[str],
    *,
    groupby: Any = "solar_day",
    physical: bool = False,
    mask: str | None = None,
    mask_clouds: bool = False,
    warnings: list[str] | None = None,
) -> xr.Dataset | None:
    """One geometry's rasters as a Dataset (time, y, x) on one grid, one mosaic per time step.

    The grid, the grouping and the mosaic rule are :mod:`rasteret_core.read.mosaic`'s. Raw
    variables keep the stored dtype with ``nodata`` and, when every scene of the Dataset has
    the same radiometry rule, CF ``scale_factor``/``add_offset``/``_FillValue`` (so
    ``xr.decode_cf`` gives physical values); ``physical=True`` gives float32 physical values
    with NaN for nodata. Coordinates ``scene_id`` (comma-joined, mosaic order) and
    ``coverage`` (fraction of the AOI's pixels with data) per time step.
    """

    gbox = target_geobox(geometry, scenes, rasters, bands)
    if gbox is None:
        return None
    mosaics = mosaic_groups(geometry_id, geometry, scenes, rasters, bands, groupby=groupby, gbox=gbox, mask=mask,
                            physical=physical, mask_clouds=mask_clouds)
    if warnings is not None:
        warnings.extend(w for m in mosaics for w in m.warnings)
    if not mosaics:
        return None
    epsg = gbox.crs.epsg
    wkt = None if epsg is not None else gbox.crs.to_wkt()
    grid = gbox.affine
    height, width = gbox.shape.yx
    variables = {}
    for band in bands:
        if not any(band in m.bands for m in mosaics):
            continue
        cube = np.stack([m.bands[band] for m in mosaics])
        fill = mosaics[0].fill[band]
        attrs: dict[str, Any] = {"nodata": fill, "grid_mapping": "spatial_ref"}
        rules = {m.rules.get(band) for m in mosaics}
        if len(rules) == 1 and None not in rules:
            scale, offset, rule = next(iter(rules))
            attrs["radiometry_rule"] = rule or "raw"
            if scale is not None and cube.dtype.kind != "f":
                attrs.update(radiometry.cf_attributes(scale, offset, fill))
        else:
            attrs["radiometry_rule"] = "mixed: scenes differ (ask for reflectance=True for physical values)"
        if cube.dtype.kind == "f":
            attrs["nodata"] = float("nan")
        variables[band] = (("time", "y", "x"), cube, attrs)
    coords = {
        "time": np.array([np.datetime64(m.time.replace(tzinfo=None), "ns") for m in mosaics]),
        "y": grid.f + (np.arange(height) + 0.5) * grid.e,
        "x": grid.c + (np.arange(width) + 0.5) * grid.a,
        "scene_id": ("time", [",".join(m.scene_ids) for m in mosaics]),
        "coverage": ("time", [m.coverage for m in mosaics]),
        "spatial_ref": spatial_ref(epsg, grid, wkt),
    }
    return xr.Dataset(variables, coords=coords, attrs={"crs": geobox_crs(gbox)})


def per_geometry_datasets(
    rasters: list[AoiRaster],
    bands: list[str],
    scenes: list[Scene],
    geometries: Mapping[str, BaseGeometry],
    **options: Any,
) -> dict[str, xr.Dataset]:
    """``{geometry id: Dataset}``, each on its own grid (see :func:`geometry_dataset`)."""
    groups: dict[str, list[AoiRaster]] = defaultdict(list)
    for r in rasters:
        groups[r.geometry_id].append(r)
    by_id = {s.id: s for s in scenes}
    out = {}
    for gid, items in groups.items():
        members = [by_id[i] for i in dict.fromkeys(r.scene_id for r in items)]
        ds = geometry_dataset(gid, geometries[gid], members, items, bands, **options)
        if ds is not None:
            out[gid] = ds
    return out


def stack_datasets(datasets: dict[str, xr.Dataset], *, allow_sparse: bool = False) -> xr.Dataset:
    """Stack per-geometry Datasets along ``geometry`` on their union grid.

    Refused (with advice) when the geometries use different CRSs or, unless ``allow_sparse``,
    lie so far apart that the union grid would be mostly empty: use the per-geometry form then.
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
    if union > MAX_SPARSE_FACTOR * parts and union > SMALL_GRID and not allow_sparse:
        raise RasteretError(
            f"the geometries are far apart: one grid would hold {union:,} pixels for {parts:,} read; "
            "use per_geometry=True to get one Dataset per geometry, or allow_sparse=True to stack them anyway"
        )
    aligned = []
    for gid, ds in datasets.items():
        filled = {name: _fill(var) for name, var in ds.data_vars.items()}
        aligned.append(ds.reindex(x=xs, y=ys, method="nearest", tolerance=abs(a) / 4, fill_value=filled)
                       .assign_coords(x=xs, y=ys).expand_dims(geometry=[gid]))
    stacked = xr.concat(aligned, dim="geometry", join="outer", coords="different", compat="equals", fill_value={n: _fill(v) for n, v in first.data_vars.items()})
    grid = Affine(a, 0.0, float(xs[0]) - a / 2, 0.0, e, float(ys[0]) - e / 2)
    ref = first.spatial_ref.attrs
    epsg = int(ref["epsg"]) if "epsg" in ref else None
    stacked = stacked.assign_coords(spatial_ref=spatial_ref(epsg, grid, ref.get("crs_wkt")))
    stacked.attrs = dict(first.attrs)
    return stacked


def _fill(var: xr.DataArray):
    """The variable's nodata as a scalar of its own dtype, so filling never upcasts uint16 to float64."""
    return np.array(var.attrs.get("nodata", 0)).astype(var.dtype)[()]


def _axis(parts: list[np.ndarray], step: float) -> np.ndarray:
    """The full, regularly spaced axis spanning every part (parts share one pixel grid)."""
    start = min(p[0] for p in parts) if step > 0 else max(p[0] for p in parts)
    stop = max(p[-1] for p in parts) if step > 0 else min(p[-1] for p in parts)
    count = int(round((stop - start) / step)) + 1
    return start + np.arange(count) * step
