"""Rasteret 0.4.1 (PyPI) as a benchmark peer, run with the Python 3.12 virtualenv.

``python peer_rasteret041.py SPEC.json OUT.json`` runs one workload like ``bench.worker``;
``python peer_rasteret041.py build SPEC.json`` builds its collections (headers harvested with
``build_from_table(enrich_cog=True)``), one per URL prefix, before any timed run and in a
process of its own.

Its documented configuration for a plain-http object store: an ``ObstoreBackend`` over an
obstore ``HTTPStore`` that allows http, passed to both the build and the reads;
``max_concurrent=64`` (as this project's default). Reads use ``Collection.get_gdf`` (one row
per record x geometry x band, polygon-masked like ``rasterio.mask``). It stores no overview
headers, so the overview workload is reported as not supported.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import header_summary, main, rep_prefix  # noqa: E402

CONCURRENCY = 64


def _backend(spec: dict):
    from obstore.store import HTTPStore
    from rasteret.cloud import ObstoreBackend

    base = f"{spec['endpoint']}/{spec['bucket']}/"
    return ObstoreBackend(HTTPStore.from_url(base, client_options={"allow_http": True}), url_prefix=base)


def _table(spec: dict, prefix: str, scenes: list[dict]):
    import pyarrow as pa
    import shapely
    from shapely.geometry import shape

    base = f"{spec['endpoint']}/{spec['bucket']}/{prefix}/"
    geom = shapely.to_wkb(shape(spec["footprint"]))
    return pa.table({
        "id": [s["id"] for s in scenes],
        "datetime": [dt.datetime.fromisoformat(s["datetime"]) for s in scenes],
        "geometry": [geom] * len(scenes),
        "assets": [{b: {"href": base + s["keys"][b]} for b in spec["bands"]} for s in scenes],
    })


def build(spec: dict) -> None:
    import rasteret

    backend = _backend(spec)
    for i, root in enumerate(spec["collections041"]):
        rasteret.build_from_table(_table(spec, rep_prefix(i), spec["scenes"]), name=f"bench-rep{i}",
                                  workspace_dir=root, enrich_cog=True, band_codes=spec["bands"], backend=backend,
                                  force=True, max_concurrent=CONCURRENCY)


def _summary(meta: dict) -> str:
    a, c, e, f = meta["transform"]
    return header_summary(meta["image_width"], meta["image_height"], meta["tile_width"], meta["tile_height"],
                          (a, 0.0, c, 0.0, e, f), meta["nodata"], -1, meta["dtype"])


def _dates(spec: dict) -> tuple[str, str]:
    # its date_range end is compared with full timestamps: give the day after the last date
    start, end = spec["date_range"]
    return start, (dt.date.fromisoformat(end) + dt.timedelta(days=1)).isoformat()


def workload(spec: dict, rep: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import rasteret
    import shapely
    from shapely.geometry import shape

    backend = _backend(spec)
    prefix = rep_prefix(rep)
    if spec["workload"] == "harvest":
        scenes = [{"id": it["id"], "datetime": "2024-01-05T11:21:29+00:00", "keys": it["keys"]} for it in spec["items"]]
        coll = rasteret.build_from_table(_table(spec, prefix, scenes), enrich_cog=True, band_codes=spec["bands"],
                                         backend=backend, max_concurrent=CONCURRENCY)
        table = coll.to_table()
        out = {}
        for band in spec["bands"]:
            for row_id, meta in zip(table.column("id").to_pylist(), table.column(f"{band}_metadata").to_pylist()):
                out[f"{row_id}/{band}.tif"] = _summary(meta)
        return {"outputs": out}
    coll = rasteret.load(spec["collections041"][rep])
    if spec["workload"] == "aoi":
        aois = spec["aois"]
        geoms = pa.array([shapely.to_wkb(shape(a["geometry"])) for a in aois])
        gdf = coll.get_gdf(geoms, spec["bands"], backend=backend, max_concurrent=CONCURRENCY, progress=False,
                           date_range=_dates(spec))
        wanted = {s["id"] for s in spec["scenes"]}
        out = {}
        for rid, gid, band, data in zip(gdf["record_id"], gdf["geometry_id"], gdf["band"], gdf["data"]):
            if rid in wanted:
                out[f"{aois[int(gid) - 1]['id']}|{rid}|{band}"] = np.asarray(data)
        return {"outputs": out}
    if spec.get("overview") is not None:
        raise NotImplementedError("overview reads not supported: Rasteret 0.4.1 stores full-resolution headers only")
    # the whole image: a polygon on the image bounds in its own CRS
    h, w = spec["shape"]
    a, _b, c, _d, e, f = spec["transform"]
    box = shapely.box(c, f + e * h, c + a * w, f)
    gdf = coll.get_gdf(box, spec["bands"], backend=backend, max_concurrent=CONCURRENCY, progress=False,
                       geometry_crs=spec["epsg"], date_range=_dates(spec))
    wanted = {s["id"] for s in spec["scenes"]}
    return {"outputs": {f"{rid}|{band}": np.asarray(data)
                        for rid, band, data in zip(gdf["record_id"], gdf["band"], gdf["data"]) if rid in wanted}}


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(json.loads(Path(sys.argv[2]).read_text()))
    else:
        main({"harvest": workload, "aoi": workload, "scene": workload})
