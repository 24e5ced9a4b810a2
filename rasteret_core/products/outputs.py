"""Writing results as Cloud-Optimized GeoTIFFs, atomically, to a folder or an s3:// prefix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from affine import Affine

from rasteret_core.errors import ArgumentError, ArgumentTypeError
from rasteret_core.cog import CogHeader, read_header, read_window
from rasteret_core.names import check_distinct, safe_name
from rasteret_core.storage import atomic_write, resolve_root


def write_cog(
    data: np.ndarray,
    path: str | os.PathLike[str],
    *,
    transform: Affine,
    crs_epsg: int | None = None,
    nodata: float | None = None,
    crs_wkt: str | None = None,
    storage_options: dict[str, Any] | None = None,
    descriptions: Sequence[str] | None = None,
    tags: Mapping[str, Any] | None = None,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
) -> str:
    """Write a 2-D (or bands x rows x cols) array as a DEFLATE COG; returns the path written.

    The file is built in a temporary folder and moved into place in one step, so readers
    never see a partial file and a failure leaves any previous file untouched. The CRS is
    ``crs_epsg``, or ``crs_wkt`` for a CRS without an EPSG code. ``descriptions`` name the
    bands (what QGIS and ``rasterio``'s ``descriptions`` show), ``tags`` describe the dataset
    (``src.tags()``), ``scales``/``offsets`` give each band's DN -> physical rule (GDAL's
    scale and offset, which ``rioxarray`` turns into CF ``scale_factor``/``add_offset``).
    """
    if crs_epsg is None and not crs_wkt:
        raise ArgumentError("write_cog needs crs_epsg or crs_wkt")
    import rasterio

    array = data[np.newaxis] if data.ndim == 2 else data
    text = os.fspath(path)
    parent, _, name = text.rpartition("/")
    _, fs, parent_path = resolve_root(parent, storage_options)
    fs.create_dir(parent_path, recursive=True)
    predictor = 3 if array.dtype.kind == "f" else 2
    with tempfile.TemporaryDirectory(prefix="rasteret-cog-") as tmp:
        local = Path(tmp) / name
        with rasterio.open(
            local, "w", driver="COG", width=array.shape[2], height=array.shape[1], count=array.shape[0],
            dtype=array.dtype.name, crs=f"EPSG:{crs_epsg}" if crs_epsg is not None else crs_wkt,
            transform=transform, nodata=nodata,
            compress="DEFLATE", predictor=predictor, blocksize=256, overview_resampling="nearest",
        ) as dst:
            dst.write(array)
            for band, description in enumerate(descriptions or (), start=1):
                dst.set_band_description(band, str(description))
            if tags:
                dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
            if scales is not None:
                dst.scales = tuple(float(v) for v in scales)
            if offsets is not None:
                dst.offsets = tuple(float(v) for v in offsets)
        atomic_write(fs, f"{parent_path}/{name}", local.read_bytes())
    return text


def save_per_geometry(ds, output_dir: str | os.PathLike[str], file_prefix: str = "", data_var: str | None = None,
                      *, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Write one GeoTIFF per geometry and date of ``ds`` (from ``Rasteret.get_xarray``).

    ``ds`` is a stacked Dataset (dims geometry, time, y, x), a per-geometry Dataset (time,
    y, x) or a dict of them. ``data_var`` picks the variable (default: the only one).
    Files are named ``<prefix><geometry>_<YYYYMMDD>.tif`` (the geometry id made path-safe by
    :func:`rasteret_core.names.safe_name`); returns their paths.
    """
    import xarray as xr

    if isinstance(ds, dict):
        check_distinct([str(g) for g in ds], what="geometry ids")
        return [p for gid, part in ds.items() for p in
                _save_one(part, output_dir, f"{file_prefix}{safe_name(str(gid))}_", data_var, storage_options)]
    if "geometry" in ds.dims:
        check_distinct([str(g) for g in ds.geometry.values], what="geometry ids")
        paths = []
        for gid in ds.geometry.values:
            part = ds.sel(geometry=gid)
            paths += _save_one(part, output_dir, f"{file_prefix}{safe_name(str(gid))}_", data_var, storage_options)
        return paths
    if not isinstance(ds, (xr.Dataset, xr.DataArray)):
        raise ArgumentTypeError("save_per_geometry needs an xarray Dataset or a dict of them")
    return _save_one(ds, output_dir, file_prefix, data_var, storage_options)


def _save_one(ds, output_dir, prefix: str, data_var: str | None, storage_options) -> list[str]:
    names = list(ds.data_vars)
    if data_var is None:
        if len(names) != 1:
            raise ArgumentError(f"the Dataset has variables {names}: pass data_var=")
        data_var = names[0]
    var = ds[data_var]
    ref = ds["spatial_ref"].attrs
    c, a, b, f, d, e = (float(v) for v in ref["GeoTransform"].split())
    transform = Affine(a, b, c, d, e, f)
    epsg = int(ref["epsg"]) if "epsg" in ref else None
    nodata = var.attrs.get("nodata", var.attrs.get("_FillValue"))
    if var.dtype.kind == "f":
        nodata = float("nan")  # float results mark nodata, outside and masked pixels with NaN
    # raw values keep their radiometry rule, as GDAL's scale and offset (CF scale_factor/add_offset)
    rule = {"scales": [var.attrs["scale_factor"]], "offsets": [var.attrs.get("add_offset", 0.0)]} \
        if "scale_factor" in var.attrs and var.dtype.kind != "f" else {}
    paths = []
    for t in var.time.values:
        day = np.datetime_as_string(t, unit="D").replace("-", "")
        path = f"{os.fspath(output_dir).rstrip('/')}/{prefix}{day}.tif"
        paths.append(write_cog(var.sel(time=t).values, path, transform=transform, crs_epsg=epsg,
                               crs_wkt=ref.get("crs_wkt"), nodata=nodata, storage_options=storage_options,
                               descriptions=[str(data_var)], **rule))
    return paths


def read_output(path: str, **reader_options: Any) -> tuple[CogHeader, np.ndarray]:
    """Read a whole single-band raster written by :func:`write_cog` back through the core
    reader, as any consumer would: returns its header and its ``(height, width)`` values.
    ``reader_options`` are :class:`~rasteret_core.cog.ReaderOptions` fields (for a private
    ``s3://`` location, ``endpoint_url`` and ``sign=True``)."""
    header = read_header(path, **reader_options)
    return header, read_window(header, None, **reader_options)[0]



NDVI_FILE = "ndvi.tif"
NDVI_SIDECAR = "ndvi.json"
"""Next to each date x AOI NDVI COG: the scenes used and the AOI pixels they cover."""


NDVI_FORMULA = "(N - R) / (N + R)"
"""NDVI in Awesome Spectral Indices' notation (N: near infrared, R: red reflectance)."""


def write_ndvi_output(raster: Any, folder: str, *, storage_options: dict[str, Any] | None = None,
                      tags: Mapping[str, Any] | None = None) -> str:
    """Write one date x AOI NDVI (a :class:`rasteret_core.products.ndvi.NdviRaster`) as ``<folder>/ndvi.tif``
    (float32 COG, NaN nodata, band description ``NDVI``, tags: the index and its formula, the
    AOI, the date, the scenes, plus ``tags``; ``tags`` with ``index``/``formula`` describe another
    index, and the band description follows ``index``) and ``<folder>/ndvi.json`` (scene ids, AOI and
    covered pixels), each atomically. Returns the COG's path."""
    import json

    described = {"INDEX": "NDVI", "FORMULA": NDVI_FORMULA, "AOI": raster.geometry_id,
                 "DATE": raster.datetime.date().isoformat() if getattr(raster, "datetime", None) else "",
                 "SCENES": ",".join(raster.scene_ids), **{k.upper(): v for k, v in (tags or {}).items()}}
    path = write_cog(raster.data, f"{folder.rstrip('/')}/{NDVI_FILE}", transform=raster.transform,
                     crs_epsg=raster.crs_epsg, crs_wkt=getattr(raster, "crs_wkt", None), nodata=float("nan"),
                     storage_options=storage_options, descriptions=[str(described["INDEX"])], tags=described)
    meta = {"scene_ids": list(raster.scene_ids), "aoi_pixels": raster.aoi_pixels,
            "covered_pixels": int(raster.covered_pixels), "valid_pixels": raster.valid_pixels}
    _, fs, parent = resolve_root(folder.rstrip("/"), storage_options)
    atomic_write(fs, f"{parent}/{NDVI_SIDECAR}", json.dumps(meta, sort_keys=True).encode())
    return path


def read_ndvi_sidecar(folder: str, *, storage_options: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The ``ndvi.json`` of a date x AOI folder, or None when there is none."""
    import json

    _, fs, parent = resolve_root(folder.rstrip("/"), storage_options)
    try:
        with fs.open_input_stream(f"{parent}/{NDVI_SIDECAR}") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
