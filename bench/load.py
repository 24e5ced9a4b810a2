"""The ``load`` benchmark: ``python -m bench.load [--quick] [--name NAME]`` (``make bench-load``).

One 20 km x 20 km grid (EPSG:32629, aligned with the scene's 10 m pixels) at 10 m and at
60 m, 2 bands (B04, B08), 12 dates, computed as a ``(time, y, x)`` cube by this project's
``load``, by odc-stac and by stackstac (GDAL tuned as in the read benchmark), and by this
project's eager AOI read where it applies (10 m). Same data, same latency-modelled server
(``bench.server``, own process), same dask threaded scheduler and thread count. Each peer x
grid runs in a fresh process: one warm-up, then timed repetitions under their own URL
prefix. Pixels are checked against ``rasterio.warp.reproject`` (nearest) of the same
source: the full-resolution file for 10 m, the overview that fits (4x, 40 m) for 60 m.
Results: ``bench/results/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.data import BENCH, data_dir, ensure_data
from bench.run import BAND_MAP, BANDS, BUCKET, CACHE, Server, footprint, make_dates, run_json_worker, scenes_for

RESULTS = BENCH / "results"
PEERS = ["rasteret-load", "rasteret-eager", "odc-stac", "stackstac", "lazycogs"]
LABELS = {"rasteret-load": "rasteret load (this project)", "rasteret-eager": "rasteret eager read_aois",
          "odc-stac": "odc-stac 0.5 (GDAL tuned)", "stackstac": "stackstac 0.5 (GDAL tuned)",
          "lazycogs": "lazycogs 0.7 (async-geotiff)"}
LAZYCOGS_PYTHON = BENCH / ".cache" / "venv-lazycogs" / "bin" / "python"  # lazycogs needs Python >= 3.12
SIDE = 20_000.0  # metres
OFFSET = 30_000.0  # from the scene's top-left corner: clear of the nodata corner, across tile edges


def log(msg: str) -> None:
    print(msg, flush=True)


def stac_item(scene: dict, geom: dict, bbox: list[float], header) -> dict:
    """An Earth Search style item with ``proj:*`` per asset (odc-stac and stackstac read them)."""
    assets = {}
    for band in BANDS:
        assets[BAND_MAP[band]] = {
            "href": f"__ENDPOINT__/{BUCKET}/__PREFIX__/{scene['keys'][band]}",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
            "proj:shape": [header.height, header.width], "proj:transform": list(header.transform)[:6],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}],
        }
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene["id"], "collection": "sentinel-2-l2a",
        "geometry": geom, "bbox": bbox,
        "properties": {"datetime": scene["datetime"].replace("+00:00", "Z"), "platform": "sentinel-2b",
                       "eo:cloud_cover": 3.0, "proj:epsg": header.crs_epsg},
        "links": [], "assets": assets,
        "stac_extensions": ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
    }


def grid(header, res: float):
    from odc.geo.geobox import GeoBox

    x0 = header.transform[2] + OFFSET
    y1 = header.transform[5] - OFFSET
    return GeoBox.from_bbox((x0, y1 - SIDE, x0 + SIDE, y1), crs=f"EPSG:{header.crs_epsg}", resolution=res)


def truth(path: Path, gbox, overview_level: int | None) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(path, **kwargs) as src:
        out = np.zeros(gbox.shape, src.dtypes[0])
        reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, src_nodata=src.nodata,
                  dst_transform=gbox.affine, dst_crs=src.crs, dst_nodata=src.nodata, resampling=Resampling.nearest)
    return out


def intersecting_tiles(header, gbox, overview: int | None) -> int:
    from odc.geo.overlap import compute_reproject_roi

    from rasteret_core.raster.grid import header_geobox
    from rasteret_core.load.runtime import tile_indices

    image = header if overview is None else header.overviews[overview]
    if overview is not None:
        from dataclasses import replace

        image = replace(image, crs_epsg=header.crs_epsg)
    roi = compute_reproject_roi(header_geobox(image), gbox, padding=0).roi_src
    return len(tile_indices(image, (roi[0].start, roi[0].stop, roi[1].start, roi[1].stop)))


def run_peer(spec: dict, workdir: Path, timeout: float) -> dict:
    tag = f"{spec['grid']}-{spec['peer']}"
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    python = sys.executable
    if spec["peer"] == "lazycogs":
        if not LAZYCOGS_PYTHON.exists():
            return {"ok": False, "skip": True, "error": "no Python 3.12 virtualenv with lazycogs "
                    "(bench/.cache/venv-lazycogs); `make bench-load` creates it where Python 3.12 is found"}
        python = str(LAZYCOGS_PYTHON)
    return run_json_worker([python, "-m", "bench.load_worker", str(spec_path), str(out_path)], out_path,
                           timeout)


def summarise(doc: dict) -> dict:
    timed = [r for r in doc["runs"] if not r["warmup"]]
    med = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    return {"wall_s": med("wall_s"), "walls_s": [round(r["wall_s"], 3) for r in timed], "cpu_s": med("cpu_s"),
            "requests": int(med("requests")), "bytes": int(med("bytes")), "not_ok": int(med("not_ok")),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in doc["runs"]), "client": timed[-1].get("client", {}),
            "pixel_check": doc.get("pixel_check")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rasteret load benchmark")
    parser.add_argument("--name", default="load")
    parser.add_argument("--quick", action="store_true", help="4 dates, 1 timed repetition")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--threads", type=int, default=16, help="dask threads, the same for every peer")
    parser.add_argument("--chunk", type=int, default=2048, help="output chunk edge (px), the same for every peer")
    parser.add_argument("--latency", default="0.02,0.08")
    parser.add_argument("--bandwidth", type=float, default=100e6)
    args = parser.parse_args(argv)
    n_dates, warmup, reps = (4, 1, 1) if args.quick else (12, 1, 2)
    lat = tuple(float(x) for x in args.latency.split(","))
    peers = args.peers.split(",")
    started = time.perf_counter()

    meta = ensure_data(10980, log=log)
    bucket_dir = data_dir(10980) / "bucket"
    workdir = CACHE / f"run-{args.name}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    server = Server(bucket_dir, (lat[0], lat[-1]), args.bandwidth)
    try:
        return _run(args, peers, n_dates, warmup, reps, lat, server, meta, bucket_dir, workdir, started)
    finally:
        server.stop()


def _run(args, peers, n_dates, warmup, reps, lat, server, meta, bucket_dir, workdir, started) -> int:
    from rasteret_core.cog import read_header
    from rasteret_core.collection import build_collection
    from rasteret_core.stac.sources import DataSource

    endpoint = server.endpoint
    header = read_header(f"{endpoint}/{BUCKET}/setup/x/B04.tif")
    geom, bbox = footprint(header)
    dates = make_dates(n_dates)
    scenes = scenes_for(dates)
    template = [stac_item(s, geom, bbox, header) for s in scenes]
    items = json.loads(json.dumps(template).replace("__ENDPOINT__", endpoint))
    collections = []
    for i in range(warmup + reps):
        path = workdir / f"items-rep{i}.json"
        path.write_text(json.dumps({"type": "FeatureCollection",
                                    "features": json.loads(json.dumps(items).replace("__PREFIX__", f"rep{i}"))}))
        source = DataSource.from_items_file(path, BAND_MAP, name="bench")
        root = workdir / "collections" / f"rep{i}"
        report = build_collection(source, root=root, date_range=(dates[0].date(), dates[-1].date()), bands=BANDS,
                                  progress=False)
        if report.failures or report.scenes != len(scenes):
            raise SystemExit(f"collection build failed: {report.message}")
        collections.append(str(root))
    log(f"built {len(collections)} collections of {len(scenes)} scenes (not timed)")

    results = {"name": args.name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "server": {"latency_s": list(lat), "bandwidth_Bps": args.bandwidth},
               "dates": n_dates, "bands": BANDS, "dask_threads": args.threads, "chunk": args.chunk,
               "load_at_start": os.getloadavg(), "grids": {}}
    for name, res, overview in (("10m", 10.0, None), ("60m", 60.0, 1)):
        gbox = grid(header, res)
        truths = {}
        for band in BANDS:
            path = workdir / f"truth-{name}-{band}.npy"
            np.save(path, truth(bucket_dir / f"{band}.tif", gbox, overview))
            truths[band] = str(path)
        tiles = intersecting_tiles(header, gbox, overview) * len(BANDS) * n_dates
        entry = {"shape": list(gbox.shape), "resolution": res, "truth_overview_level": overview,
                 "intersecting_tiles": tiles, "peers": {}}
        log(f"\n-- {name}: {gbox.shape[1]} x {gbox.shape[0]} px x {len(BANDS)} bands x {n_dates} dates; "
            f"{tiles} intersecting tiles")
        for peer in peers:
            if peer == "rasteret-eager" and res != 10.0:
                entry["peers"][peer] = {"status": "n/a", "note": "the eager read has no overview/resampling path"}
                continue
            spec = {"peer": peer, "grid": name, "endpoint": endpoint, "bucket": BUCKET, "bands": BANDS,
                    "band_map": BAND_MAP, "items": json.loads(json.dumps(template).replace("__ENDPOINT__", endpoint)),
                    "collections": collections, "shape": list(gbox.shape), "transform": list(gbox.affine)[:6],
                    "epsg": header.crs_epsg, "chunk": args.chunk, "dask_threads": args.threads, "dates": n_dates,
                    "truth": truths, "warmup": warmup, "reps": reps, "workdir": str(workdir)}
            load_before = os.getloadavg()[0]
            doc = run_peer(spec, workdir, timeout=1800)
            if not doc.get("ok"):
                entry["peers"][peer] = {"status": "SKIP" if doc.get("skip") else "ERROR", "note": doc.get("error", "")[:300]}
                log(f"   {peer:15s} ERROR {doc.get('error', '')[:300]}")
                continue
            s = summarise(doc)
            s["status"] = "ok"
            s["load_before"] = load_before
            entry["peers"][peer] = s
            pc = s["pixel_check"]
            log(f"   {peer:15s} {s['wall_s']:8.2f} s  cpu {s['cpu_s']:6.1f} s  {s['requests']:5d} req "
                f"{s['bytes'] / 1e6:7.1f} MB  rss {s['peak_rss_mb']:5.0f} MB  pixels differing {pc['differing']}"
                f"{' missing ' + str(pc['missing'][:2]) if pc['missing'] else ''}  (load {load_before:.1f})")
        ours = entry["peers"].get("rasteret-load", {})
        for s in entry["peers"].values():
            if s.get("status") == "ok" and ours.get("status") == "ok":
                s["vs_ours"] = s["wall_s"] / ours["wall_s"]
        results["grids"][name] = entry
    results["load_at_end"] = os.getloadavg()
    results["targets"] = targets(results)
    results["elapsed_s"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1, default=str))
    table = markdown(results)
    (RESULTS / f"{args.name}.md").write_text(table + "\n")
    log("\n" + table)
    return 0


def targets(results: dict) -> list[dict]:
    out = []
    g10, g60 = results["grids"].get("10m", {}), results["grids"].get("60m", {})
    p10, p60 = g10.get("peers", {}), g60.get("peers", {})
    ours10, ours60 = p10.get("rasteret-load", {}), p60.get("rasteret-load", {})

    def add(name, ok, detail):
        out.append({"target": name, "status": "n/a" if ok is None else ("PASS" if ok else "MISS"), "detail": detail})

    odc = p10.get("odc-stac", {})
    if ours10.get("status") == "ok" and odc.get("status") == "ok":
        add(">= 1.5x faster than odc-stac at 10 m", odc["wall_s"] >= 1.5 * ours10["wall_s"],
            f"{odc['wall_s'] / ours10['wall_s']:.2f}x ({odc['wall_s']:.2f} s vs {ours10['wall_s']:.2f} s)")
    odc60 = p60.get("odc-stac", {})
    if ours60.get("status") == "ok" and odc60.get("status") == "ok":
        add("not slower than odc-stac at 60 m", odc60["wall_s"] >= ours60["wall_s"],
            f"{odc60['wall_s'] / ours60['wall_s']:.2f}x ({odc60['wall_s']:.2f} s vs {ours60['wall_s']:.2f} s)")
        add("peak RSS below odc-stac's (10 m)", ours10["peak_rss_mb"] < odc["peak_rss_mb"],
            f"{ours10['peak_rss_mb']:.0f} MB vs {odc['peak_rss_mb']:.0f} MB")
    for name, ours, entry in (("10 m", ours10, g10), ("60 m", ours60, g60)):
        if ours.get("status") == "ok":
            add(f"requests <= intersecting tiles ({name})", ours["requests"] <= entry["intersecting_tiles"],
                f"{ours['requests']} requests, {entry['intersecting_tiles']} tiles, "
                f"{ours['client'].get('header_requests', '?')} header requests")
            add(f"pixels equal rasterio.warp.reproject ({name})", ours["pixel_check"]["differing"] == 0
                and not ours["pixel_check"]["missing"], f"{ours['pixel_check']['differing']} differing")
    if ours10.get("status") == "ok" and ours60.get("status") == "ok":
        ratio = ours10["bytes"] / max(1, ours60["bytes"])
        add("60 m fetches >= 10x fewer bytes than 10 m", ratio >= 10, f"{ratio:.1f}x fewer")
    return out


def markdown(results: dict) -> str:
    la = results["load_at_start"]
    lines = [
        f"Benchmark `{results['name']}` ({results['date']}): 20 km x 20 km grid, {len(results['bands'])} bands x "
        f"{results['dates']} dates, dask threaded scheduler with {results['dask_threads']} threads for every peer, "
        f"{results['chunk']} px chunks; server latency U({results['server']['latency_s'][0] * 1000:.0f}, "
        f"{results['server']['latency_s'][-1] * 1000:.0f}) ms, {results['server']['bandwidth_Bps'] / 1e6:.0f} MB/s "
        f"per connection; {results['machine']['cpus']} cores, load average at start {la[0]:.1f} / {la[1]:.1f} / "
        f"{la[2]:.1f} (1/5/15 min), at end {results['load_at_end'][0]:.1f}. Wall = median of timed runs.",
        "",
        "| grid | peer | status | wall s | vs ours | requests | MB | CPU s | peak RSS MB | pixels differing from reproject | load before |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results["grids"].items():
        lines.append(f"| **{name}** | *intersecting tiles* | | | | {entry['intersecting_tiles']} | | | | | |")
        for peer, s in entry["peers"].items():
            label = LABELS.get(peer, peer)
            if s.get("status") != "ok":
                lines.append(f"| {name} | {label} | {s.get('status')}: {s.get('note', '')[:120]} | | | | | | | | |")
                continue
            pc = s["pixel_check"]
            diff = f"{pc['differing']} of {pc['pixels']:,}" if not pc["missing"] else f"missing {pc['missing'][:1]}"
            lines.append(f"| {name} | {label} | ok | {s['wall_s']:.2f} | {s.get('vs_ours', 1):.2f}x | {s['requests']} | "
                         f"{s['bytes'] / 1e6:.1f} | {s['cpu_s']:.1f} | {s['peak_rss_mb']:.0f} | {diff} | "
                         f"{s['load_before']:.1f} |")
    lines += ["", "| target | status | detail |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['status']} | {t['detail']} |" for t in results["targets"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
