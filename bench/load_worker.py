"""One ``load`` benchmark peer x grid in a fresh process: ``python -m bench.load_worker SPEC OUT``.

Peers, each computing a ``(time, y, x)`` cube of 2 bands on the same grid with dask's threaded
scheduler (``spec["dask_threads"]`` threads for everyone):

- ``rasteret-load``: this project's ``load`` on a collection built before the timed runs;
- ``rasteret-eager``: this project's eager AOI read (``read_aois``) of the grid's square, on
  the native grid only (it has no overview or resampling path);
- ``odc-stac``: ``odc.stac.load(items, geobox=...)`` with GDAL tuned as in the read benchmark
  (``configure_rio(cloud_defaults=True, ...)``);
- ``stackstac``: ``stackstac.stack(items, epsg, resolution, bounds)`` with the same GDAL env;
- ``lazycogs``: ``lazycogs.open`` over a stac-geoparquet file of the same items (written with
  rustac before the timed runs), reading with async-geotiff through an obstore ``HTTPStore``;
  it needs Python >= 3.12, so this module runs for it in ``bench/.cache/venv-lazycogs``.

After the timed runs (not timed), the last run's arrays are compared pixel by pixel with the
truth the orchestrator computed with ``rasterio.warp.reproject`` (``spec["truth"]``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

from bench.common import rep_prefix, run_worker
from bench.worker import TUNED_GDAL

_LAST: dict = {}


def _geobox(spec: dict):
    from odc.geo.geobox import GeoBox
    from affine import Affine

    return GeoBox(tuple(spec["shape"]), Affine(*spec["transform"]), f"EPSG:{spec['epsg']}")


def _items(spec: dict, rep: int):
    import pystac

    prefix = rep_prefix(rep)
    raw = json.loads(json.dumps(spec["items"]).replace("__PREFIX__", prefix))
    return [pystac.Item.from_dict(d) for d in raw]


def _dask_config(spec: dict):
    import dask

    return dask.config.set(scheduler="threads", num_workers=spec["dask_threads"])


def _gdal_options() -> dict:
    """The read benchmark's tuned GDAL options, typed as rasterio wants them (GDAL_CACHEMAX an int)."""
    return {k: (int(v) if k == "GDAL_CACHEMAX" else v) for k, v in TUNED_GDAL.items()}


def rasteret_load(spec: dict, rep: int) -> dict:
    from rasteret_core.collection import Collection
    from rasteret_core.load import load, process_stats

    before = process_stats()
    with _dask_config(spec):
        coll = Collection.open(spec["collections"][rep])
        ds = load(coll, spec["bands"], geobox=_geobox(spec), chunks={"x": spec["chunk"], "y": spec["chunk"]},
                  groupby="solar_day", resampling="nearest")
        ds = ds.compute()
    after = process_stats()
    stats = {k: after[k] - before.get(k, 0) for k in after}
    return {"outputs": {f"t{i}|{b}": ds[b].values[i] for b in spec["bands"] for i in range(ds.sizes["time"])},
            "stats": stats}


def rasteret_eager(spec: dict, rep: int) -> dict:
    import shapely
    from affine import Affine
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    from rasteret_core.cog import ReadStats
    from rasteret_core.collection import Collection
    from rasteret_core.read import read_aois

    coll = Collection.open(spec["collections"][rep])
    scenes = coll.scenes(bands=spec["bands"])
    h, w = spec["shape"]
    t = Affine(*spec["transform"])
    square = shapely.box(t.c, t.f + h * t.e, t.c + w * t.a, t.f)
    lonlat = shape(transform_geom(f"EPSG:{spec['epsg']}", "EPSG:4326", square.__geo_interface__))
    stats = ReadStats()
    result = read_aois(scenes, {"grid": lonlat}, spec["bands"], stats=stats)
    if result.failures:
        raise RuntimeError(f"read failures: {result.failures[:3]}")
    # place each crop on the output grid (same pixel grid: an integer offset)
    order = {s.id: i for i, s in enumerate(scenes)}
    outputs = {}
    for r in result.rasters:
        out = np.zeros((h, w), r.data.dtype)
        dc, dr = round((r.transform.c - t.c) / t.a), round((r.transform.f - t.f) / t.e)
        rh, rw = r.data.shape
        y0, x0 = max(0, dr), max(0, dc)
        y1, x1 = min(h, dr + rh), min(w, dc + rw)
        out[y0:y1, x0:x1] = r.data[y0 - dr:y1 - dr, x0 - dc:x1 - dc]
        outputs[f"t{order[r.scene_id]}|{r.band}"] = out
    return {"outputs": outputs, "stats": stats.as_dict()}


def odc_stac(spec: dict, rep: int) -> dict:
    os.environ.update(TUNED_GDAL)
    import odc.stac

    odc.stac.configure_rio(cloud_defaults=True, **_gdal_options())
    assets = [spec["band_map"][b] for b in spec["bands"]]
    with _dask_config(spec):
        ds = odc.stac.load(_items(spec, rep), bands=assets, geobox=_geobox(spec),
                           chunks={"x": spec["chunk"], "y": spec["chunk"]}, groupby="solar_day", resampling="nearest")
        ds = ds.compute()
    return {"outputs": {f"t{i}|{b}": ds[spec["band_map"][b]].values[i] for b in spec["bands"]
                        for i in range(ds.sizes["time"])}}


def stackstac_peer(spec: dict, rep: int) -> dict:
    os.environ.update(TUNED_GDAL)
    import stackstac
    from rasterio.enums import Resampling

    env = stackstac.DEFAULT_GDAL_ENV.updated(always=_gdal_options())
    h, w = spec["shape"]
    a, _, c, _, e, f = spec["transform"]
    bounds = (c, f + h * e, c + w * a, f)
    assets = [spec["band_map"][b] for b in spec["bands"]]
    with _dask_config(spec):
        arr = stackstac.stack(_items(spec, rep), assets=assets, epsg=spec["epsg"], resolution=a, bounds=bounds,
                              chunksize=spec["chunk"], resampling=Resampling.nearest, dtype="uint16", fill_value=np.uint16(0),
                              rescale=False, gdal_env=env).compute()
    return {"outputs": {f"t{i}|{b}": np.asarray(arr.sel(band=spec["band_map"][b]).values[i])
                        for b in spec["bands"] for i in range(arr.sizes["time"])}}


def _lazycogs_parquets(spec: dict) -> list[str]:
    """One stac-geoparquet file per repetition's URL prefix (not timed, as our collections)."""
    import rustac

    paths = []
    for rep in range(spec["warmup"] + spec["reps"]):
        path = os.path.join(spec["workdir"], f"lazycogs-items-rep{rep}.parquet")
        items = json.loads(json.dumps(spec["items"]).replace("__PREFIX__", rep_prefix(rep)))
        rustac.write_sync(path, items)
        paths.append(path)
    return paths


def _duckdb_client(spec: dict):
    """rustac's DuckDB client with the extensions it loads (spatial, icu) from the
    ``duckdb-extension-*`` wheels: DuckDB would download them from the internet, which the
    benchmark does not use."""
    import glob
    import site

    import rustac

    folder = os.path.join(spec["workdir"], "duckdb-extensions")
    for root in site.getsitepackages():
        for wheel_file in glob.glob(os.path.join(root, "duckdb_extension_*", "extensions", "v*", "*.duckdb_extension")):
            version = os.path.basename(os.path.dirname(wheel_file))
            target = os.path.join(folder, version, "linux_amd64", os.path.basename(wheel_file))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                os.symlink(wheel_file, target)
    return rustac.DuckdbClient(extension_directory=folder, install_extensions=False)


def lazycogs_peer(spec: dict, rep: int) -> dict:
    from urllib.parse import urlparse

    import lazycogs
    from obstore.store import HTTPStore

    h, w = spec["shape"]
    a, _, c, _, e, f = spec["transform"]
    assets = [spec["band_map"][b] for b in spec["bands"]]
    store = HTTPStore.from_url(spec["endpoint"] + "/", client_options={"allow_http": True})
    with _dask_config(spec):
        arr = lazycogs.open(spec["parquets"][rep], bbox=(c, f + h * e, c + w * a, f), crs=f"EPSG:{spec['epsg']}",
                            resolution=a, bands=assets, chunks={"x": spec["chunk"], "y": spec["chunk"]},
                            dtype="uint16", nodata=0, store=store, duckdb_client=_duckdb_client(spec),
                            path_from_href=lambda href: urlparse(href).path.lstrip("/")).compute()
    return {"outputs": {f"t{i}|{b}": np.asarray(arr.sel(band=spec["band_map"][b]).values[i])
                        for b in spec["bands"] for i in range(arr.sizes["time"])}}


PEERS = {"rasteret-load": rasteret_load, "rasteret-eager": rasteret_eager, "odc-stac": odc_stac,
         "stackstac": stackstac_peer, "lazycogs": lazycogs_peer}


def _run(spec: dict, rep: int) -> dict:
    _LAST.clear()  # the previous repetition's arrays must not count in this one's peak RSS
    result = PEERS[spec["peer"]](spec, rep)
    _LAST.update(result["outputs"])
    return result


def pixel_check(spec: dict) -> dict:
    """Per band: pixels differing from the rasterio.warp.reproject truth, over all time steps."""
    out = {"differing": 0, "pixels": 0, "missing": []}
    for band in spec["bands"]:
        truth = np.load(spec["truth"][band])
        for i in range(spec["dates"]):
            got = _LAST.get(f"t{i}|{band}")
            if got is None or got.shape != truth.shape:
                out["missing"].append(f"t{i}|{band}: {None if got is None else got.shape} vs {truth.shape}")
                continue
            out["differing"] += int((got != truth).sum())
            out["pixels"] += int(truth.size)
    return out


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    spec = json.loads(open(spec_path).read())
    try:
        if spec["peer"] == "lazycogs":
            spec["parquets"] = _lazycogs_parquets(spec)
        doc = run_worker(spec, _run)
        doc["pixel_check"] = pixel_check(spec)
        doc["ok"] = True
    except Exception as exc:  # reported by the orchestrator
        doc = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    with open(out_path, "w") as fh:
        json.dump(doc, fh, default=str)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
