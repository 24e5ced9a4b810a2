"""One benchmark peer x workload in a fresh process (the project's virtualenv).

``python -m bench.worker SPEC.json OUT.json`` with ``spec["peer"]`` one of:

- ``rasterio-naive``: the plain sequential loop (``rasterio.open(url).read(window=...)`` per
  AOI, date and band) with GDAL's default settings;
- ``gdal-threads``: rasterio/GDAL over ``/vsicurl/`` in its documented cloud configuration
  (``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``, multi-range and merged consecutive ranges, VSI
  cache on, ``GDAL_NUM_THREADS``) with a thread pool, one dataset per thread and file;
- ``async-geotiff``: async-geotiff over an obstore ``HTTPStore`` (plain http allowed), all
  files opened and all windows read concurrently with asyncio;
- ``rasteret``: this project. Headers come from a collection built before the timed runs
  (harvest workload: the harvest itself is what is timed).

Workloads: ``harvest`` (open N COGs, read their headers), ``aoi`` (K AOI windows x T dates x
2 bands), ``scene`` (the whole scene of each band at full resolution or an overview level).
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.common import header_summary, main, rep_prefix, url

PEER_SETUP = {}

TUNED_GDAL = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 * 1024 * 1024),
    "GDAL_CACHEMAX": "512",
    "GDAL_NUM_THREADS": "ALL_CPUS",
    "GDAL_HTTP_MAX_RETRY": "3",
}


def _aoi_jobs(spec: dict) -> list[tuple[str, str, str, str, tuple[int, int, int, int]]]:
    """(output key, scene id, band, object key, window) for every AOI x date x band."""
    jobs = []
    for aoi in spec["aois"]:
        for scene in spec["scenes"]:
            for band in spec["bands"]:
                jobs.append((f"{aoi['id']}|{scene['id']}|{band}", scene["id"], band, scene["keys"][band],
                             tuple(aoi["window"])))
    return jobs


def _strips(width: int, height: int, rows: int) -> list[tuple[int, int, int, int]]:
    return [(0, r, width, min(rows, height - r)) for r in range(0, height, rows)]


# --- rasterio / GDAL --------------------------------------------------------------------------
def _rio_summary(src) -> str:
    return header_summary(src.width, src.height, src.block_shapes[0][1], src.block_shapes[0][0], tuple(src.transform),
                          src.nodata, len(src.overviews(1)), src.dtypes[0])


def rio_naive(spec: dict, rep: int) -> dict:
    import rasterio
    from rasterio.windows import Window

    prefix = rep_prefix(rep)
    outputs, pixels = {}, 0
    with rasterio.Env():
        if spec["workload"] == "harvest":
            for item in spec["items"]:
                for band, key in item["keys"].items():
                    with rasterio.open("/vsicurl/" + url(spec, prefix, key)) as src:
                        outputs[key] = _rio_summary(src)
        elif spec["workload"] == "aoi":
            for out_key, _sid, _band, key, (c, r, w, h) in _aoi_jobs(spec):
                with rasterio.open("/vsicurl/" + url(spec, prefix, key)) as src:
                    arr = src.read(1, window=Window(c, r, w, h))
                outputs[out_key] = arr
        else:
            ov = spec.get("overview")
            for scene in spec["scenes"]:
                for band in spec["bands"]:
                    kwargs = {"overview_level": ov} if ov is not None else {}
                    with rasterio.open("/vsicurl/" + url(spec, prefix, scene["keys"][band]), **kwargs) as src:
                        outputs[f"{scene['id']}|{band}"] = src.read(1)
    return {"outputs": outputs}


def gdal_threads(spec: dict, rep: int) -> dict:
    # GDAL reads configuration options from the environment: set before the first open
    os.environ.update(TUNED_GDAL)
    import rasterio
    from rasterio.windows import Window

    prefix = rep_prefix(rep)
    threads = spec.get("threads", 16)
    local = threading.local()
    lock = threading.Lock()
    every: list = []

    def dataset(path: str, overview: int | None = None):
        # one rasterio dataset per thread and file (GDAL datasets are not thread-safe)
        cache = getattr(local, "datasets", None)
        if cache is None:
            cache = local.datasets = {}
        key = (path, overview)
        if key not in cache:
            kwargs = {"overview_level": overview} if overview is not None else {}
            cache[key] = rasterio.open(path, **kwargs)
            with lock:
                every.append(cache[key])
        return cache[key]

    outputs = {}
    with rasterio.Env(), ThreadPoolExecutor(threads) as pool:
        if spec["workload"] == "harvest":
            keys = [key for item in spec["items"] for key in item["keys"].values()]

            def head(key: str) -> tuple[str, str]:
                return key, _rio_summary(dataset("/vsicurl/" + url(spec, prefix, key)))

            outputs = dict(pool.map(head, keys))
        elif spec["workload"] == "aoi":
            def read(job):
                out_key, _sid, _band, key, (c, r, w, h) = job
                return out_key, dataset("/vsicurl/" + url(spec, prefix, key)).read(1, window=Window(c, r, w, h))

            outputs = dict(pool.map(read, _aoi_jobs(spec)))
        else:
            ov = spec.get("overview")
            tasks = []
            for scene in spec["scenes"]:
                for band in spec["bands"]:
                    path = "/vsicurl/" + url(spec, prefix, scene["keys"][band])
                    w, h, tile = spec["shape"][1], spec["shape"][0], spec["tile"]
                    for strip in _strips(w, h, tile):
                        tasks.append((f"{scene['id']}|{band}", path, strip))

            def read_strip(task):
                out_key, path, (c, r, w, h) = task
                return out_key, r, dataset(path, ov).read(1, window=Window(c, r, w, h))

            parts: dict[str, list] = {}
            for out_key, r, arr in pool.map(read_strip, tasks):
                parts.setdefault(out_key, []).append((r, arr))
            for out_key, strips in parts.items():
                outputs[out_key] = np.concatenate([a for _r, a in sorted(strips, key=lambda p: p[0])], axis=0)
                strips.clear()
    for ds in every:
        ds.close()
    return {"outputs": outputs}


# --- async-geotiff ----------------------------------------------------------------------------
def async_geotiff(spec: dict, rep: int) -> dict:
    from async_geotiff import GeoTIFF, Window
    from obstore.store import HTTPStore

    prefix = rep_prefix(rep)
    store = HTTPStore.from_url(f"{spec['endpoint']}/{spec['bucket']}", client_options={"allow_http": True})

    async def run() -> dict:
        if spec["workload"] == "harvest":
            keys = [key for item in spec["items"] for key in item["keys"].values()]
            tiffs = await asyncio.gather(*(GeoTIFF.open(f"{prefix}/{k}", store=store) for k in keys))
            return {k: header_summary(t.width, t.height, t.tile_width, t.tile_height, tuple(t.transform), t.nodata,
                                      len(t.overviews), np.dtype(t.dtype).name) for k, t in zip(keys, tiffs)}
        files = {}
        for scene in spec["scenes"]:
            for band in spec["bands"]:
                files[(scene["id"], band)] = f"{prefix}/{scene['keys'][band]}"
        opened = await asyncio.gather(*(GeoTIFF.open(p, store=store) for p in files.values()))
        tiff = dict(zip(files, opened))
        if spec["workload"] == "aoi":
            jobs = _aoi_jobs(spec)
            arrays = await asyncio.gather(*(
                tiff[(sid, band)].read(window=Window(col_off=c, row_off=r, width=w, height=h))
                for _k, sid, band, _key, (c, r, w, h) in jobs
            ))
            return {job[0]: a.data[0] for job, a in zip(jobs, arrays)}
        ov = spec.get("overview")
        keys = list(tiff)
        images = [tiff[k] if ov is None else tiff[k].overviews[ov] for k in keys]
        arrays = await asyncio.gather(*(img.read() for img in images))
        return {f"{sid}|{band}": a.data[0] for (sid, band), a in zip(keys, arrays)}

    return {"outputs": asyncio.run(run())}


# --- rasteret (this project) ------------------------------------------------------------------
def rasteret(spec: dict, rep: int) -> dict:
    from shapely.geometry import shape

    from rasteret_core.cog import CogClient, ReaderOptions, ReadStats
    from rasteret_core.cog.reader import run_sync
    from rasteret_core.collection import Collection
    from rasteret_core.collection.harvest import aharvest
    from rasteret_core.read.aoi import aread_aois
    from rasteret_core.stac.sources import DataSource

    prefix = rep_prefix(rep)
    stats = ReadStats()
    options = ReaderOptions.coerce(spec.get("reader_options"))  # a sweep may vary them; default: the defaults
    bands = spec["bands"]
    os.environ["AWS_ENDPOINT_URL"] = spec["endpoint"]  # the collection's s3:// hrefs resolve to this server

    async def run() -> dict:
        if spec["workload"] == "harvest":
            import json

            items = json.loads(json.dumps(spec["items_stac"]).replace("__PREFIX__", prefix))
            source = DataSource.from_items_file("bench-items.json", spec["band_map"], name="bench")
            result = await aharvest(items, source, stats=stats, progress=False, reader_options=options)
            if result.failures:
                raise RuntimeError(f"harvest failures: {result.failures[:3]}")
            out = {}
            for scene in result.scenes:
                for band, asset in scene.bands.items():
                    h = asset.header
                    key = asset.href.split(f"/{prefix}/", 1)[1]
                    out[key] = header_summary(h.width, h.height, h.tile_width, h.tile_height, tuple(h.transform),
                                              h.nodata, len(h.overviews), np.dtype(h.dtype).name)
            return out
        coll = Collection.open(spec["collections"][rep])
        if spec["workload"] == "aoi":
            # scenes stream from the collection scan into the read: fetching starts with the first date
            geoms = {a["id"]: shape(a["geometry"]) for a in spec["aois"]}
            scenes = coll.iter_scenes(date_range=tuple(spec["date_range"]), bands=bands)
            result = await aread_aois(scenes, geoms, bands, stats=stats, fill_outside=False, reader_options=options)
            if result.failures:
                raise RuntimeError(f"read failures: {result.failures[:3]}")
            got = len({r.scene_id for r in result.rasters})
            if got != len(spec["scenes"]):
                raise RuntimeError(f"read {got} scenes, expected {len(spec['scenes'])}")
            return {f"{r.geometry_id}|{r.scene_id}|{r.band}": r.data for r in result.rasters}
        scenes = coll.scenes(date_range=tuple(spec["date_range"]), bands=bands)
        if len(scenes) != len(spec["scenes"]):
            raise RuntimeError(f"collection has {len(scenes)} scenes, expected {len(spec['scenes'])}")
        ov = spec.get("overview")
        pairs = [(s, b) for s in scenes for b in bands]
        async with CogClient(options) as client:
            arrays = await client.read_windows([(s.bands[b].header, None) for s, b in pairs], overview=ov, stats=stats)
        return {f"{s.id}|{b}": a[0] for (s, b), a in zip(pairs, arrays)}

    return {"outputs": run_sync(run), "stats": stats.as_dict()}


PEERS = {
    "rasterio-naive": rio_naive,
    "gdal-threads": gdal_threads,
    "async-geotiff": async_geotiff,
    "rasteret": rasteret,
}


def _dispatch(spec: dict, rep: int) -> dict:
    return PEERS[spec["peer"]](spec, rep)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main({"harvest": _dispatch, "aoi": _dispatch, "scene": _dispatch})
