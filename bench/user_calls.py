"""The calls users make, beside the engine they sit on: ``python -m bench.user_calls [--quick]``.

One run, one server, one collection per repetition (its own URL prefix, so no cache helps):

- ``read_aois``: the engine floor, every AOI window of every scene and band read and decoded,
  the collection scan streaming into the read (what ``bench.run``'s ``aoi`` workload times);
- ``get_xarray``: ``Rasteret.get_xarray(aois, bands, per_geometry=True)``, the same reads plus
  the per-AOI mosaic, reflectance off, and the xarray Datasets;
- ``get_gdf``: ``Rasteret.get_gdf(aois, bands)``, the same reads as a GeoDataFrame;
- ``ndvi``: the NDVI product's work, ``aoi_ndvi`` per AOI and solar day (the bench scenes carry
  no cloud mask band, so none is read).

The calls alternate within each repetition (A B C, then B C A, ...) so drift over the run
falls on all of them. Wall time is the median of the timed repetitions; CPU is the process's
user + system time over the call. Writes ``bench/results/user-calls.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import time
from pathlib import Path

from bench.data import BENCH, CACHE, ensure_data
from bench.run import BAND_MAP, BANDS, BUCKET, footprint, make_aois, make_dates, scenes_for, Server, stac_item

RESULTS = BENCH / "results"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5490 px scenes, 2 timed repetitions")
    parser.add_argument("--aois", type=int, default=4)
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--profile", help="cProfile the first timed call of --profile-call into this file")
    parser.add_argument("--profile-call", default="get_xarray")
    args = parser.parse_args(argv)
    size, reps = (5490, 2) if args.quick else (10980, 5)
    meta = ensure_data(size)
    bucket = Path(meta["files"]["B04"]["path"]).parent
    bucket = bucket if bucket.is_absolute() else BENCH / bucket
    lat = args.latency_ms / 1000
    server = Server(bucket, (lat, lat), 100e6)
    try:
        return _run(args, size, reps, server)
    finally:
        server.stop()


def _run(args, size: int, reps: int, server: Server) -> int:
    import shapely.geometry

    from rasteret_core import Rasteret
    from rasteret_core.cog import read_header, ReadStats
    from rasteret_core.collection import build_collection
    from rasteret_core.read.aoi import read_aois
    from rasteret_core.stac.sources import DataSource

    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    header = read_header(f"{server.endpoint}/{BUCKET}/setup/x/B04.tif")
    geom, bbox = footprint(header)
    dates = make_dates(args.dates)
    scenes = scenes_for(dates)
    aois = {a["id"]: shapely.geometry.shape(a["geometry"]) for a in make_aois(header, args.aois)}
    work = CACHE / f"run-user-calls-{size}"
    work.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(reps + 1):  # one warm-up, then the timed repetitions; each its own URL prefix
        items = [stac_item(s, f"s3://{BUCKET}/u{i}", geom, bbox) for s in scenes]
        path = work / f"items-{i}.json"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
        source = DataSource.from_items_file(path, BAND_MAP, name=f"bench-u{i}")
        root = work / "collections" / f"u{i}"
        report = build_collection(source, root=root, date_range=(dates[0].date(), dates[-1].date()), bands=BANDS,
                                  progress=False, name=f"u{i}", if_exists="overwrite")
        if report.scenes != len(scenes):
            raise SystemExit(f"collection build failed: {report.message}")
        names.append(str(root))

    def engine(root: str):
        from rasteret_core.collection import Collection

        stats = ReadStats()
        # the scan streams into the read, as bench.run times this project's engine
        result = read_aois(Collection.open(root).iter_scenes(bands=BANDS), aois, BANDS, stats=stats,
                           fill_outside=False)
        assert not result.failures, result.failures[:2]
        return stats

    def user(root: str, call: str):
        r = Rasteret.load_collection(Path(root).name, str(Path(root).parent))
        r.progress = False
        if call == "get_xarray":
            out = r.get_xarray(aois, BANDS, per_geometry=True)
            assert len(out) == len(aois)
        else:
            out = r.get_gdf(aois, BANDS)
            assert len(out) == len(aois) * len(scenes) * len(BANDS)
        return r.last_stats

    def ndvi(root: str):
        from rasteret_core.collection import Collection
        from rasteret_core.products.ndvi import aoi_ndvi

        stats = ReadStats()
        result = aoi_ndvi(Collection.open(root).iter_scenes(bands=BANDS), aois, red="B04", nir="B08", stats=stats)
        assert not result.failures and len(result.rasters) == len(aois) * len(scenes)
        return stats

    calls = {"read_aois": engine, "get_xarray": lambda root: user(root, "get_xarray"),
             "get_gdf": lambda root: user(root, "get_gdf"), "ndvi": ndvi}
    order = list(calls)
    timings: dict[str, list[tuple[float, float, int]]] = {c: [] for c in calls}
    for i, root in enumerate(names):
        rotated = order[i % len(order):] + order[: i % len(order)]
        for call in rotated:
            profile = args.profile and call == args.profile_call and i == 1
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            t0, c0 = time.perf_counter(), _cpu()
            stats = calls[call](root)
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            if profile:
                profiler.disable()
                profiler.dump_stats(args.profile)
            if i:  # the first round warms imports and pools
                timings[call].append((wall, cpu, stats.requests))
            print(f"rep {i} {call:10s} {wall:6.2f} s  cpu {cpu:5.2f} s  {stats.requests} requests"
                  f"  {stats.header_requests} header requests", flush=True)
    rows = {c: {"wall_s": statistics.median(w for w, _, _ in t), "cpu_s": statistics.median(c_ for _, c_, _ in t),
                "requests": t[0][2]} for c, t in timings.items()}
    floor = rows["read_aois"]["wall_s"]
    for row in rows.values():
        row["vs_read_aois"] = row["wall_s"] / floor
    doc = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "size": size,
           "aois": args.aois, "dates": args.dates, "bands": BANDS, "latency_ms": args.latency_ms,
           "timed_reps": reps, "cores": os.cpu_count(), "load_average": os.getloadavg(), "calls": rows}
    RESULTS.mkdir(exist_ok=True)
    name = "user-calls-quick" if args.quick else "user-calls"
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=1))
    lines = [f"User calls ({doc['when']}): {args.aois} AOIs x {args.dates} dates x {len(BANDS)} bands, {size} px "
             f"scenes, {args.latency_ms:g} ms per request, median of {reps} timed repetitions, {os.cpu_count()} cores",
             "", "| call | wall s | vs read_aois | CPU s | requests |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {c} | {r['wall_s']:.2f} | {r['vs_read_aois']:.2f}x | {r['cpu_s']:.2f} | {r['requests']} |"
              for c, r in rows.items()]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
