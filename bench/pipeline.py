"""Pipeline benchmark: a UI-style backfill of every asset over D dates x K AOIs.

A real local deployment (``dagster-daemon`` + ``dagster-webserver`` processes on a SQLite
``DAGSTER_HOME``, each run in its own process) over demo scenes served by the project's
S3-compatible store with modelled latency (20-80 ms first byte). The backfill is launched over
GraphQL as the UI launches it, from a ready instance (webserver up, AOI partitions present),
and timed until the backfill is done. Reported: runs launched, wall time, partitions per
minute, requests per run, the load average of the machine, and the instance's size.

    python -m bench.pipeline --dates 3 --aois 12            # this design
    python -m bench.pipeline --dates 3 --aois 12 --project DIR   # another checkout (e.g. before)
    python -m bench.pipeline --dates 12 --aois 24 --dask-workers 2  # NDVI dates on 2 worker processes

Writes ``bench/results/pipeline-<D>x<K>[-label].json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BUCKET, PREFIX = "sentinel-cogs", "sentinel-s2-l2a-cogs/43/P/GQ"
FIRST_DAY = dt.date(2024, 1, 1)
# the tests' daemon: the real one with a 3 s backfill loop (Dagster's is a fixed 30 s)
QUICK_DAEMON, QUICK_LOOP_S = [sys.executable, "-m", "tests.helpers.quick_daemon"], 3


def make_data(root: Path, dates: int, aois: int, tiles: int = 4) -> tuple[Path, Path, list[str]]:
    """``tiles`` adjacent synthetic Sentinel-2-like tiles (side by side in one UTM zone, one set
    of files per tile, linked per date), one scene per tile and date, and ``aois`` square fields
    of ~600 m spread evenly over all the tiles. Returns (items file, AOI file, dates)."""
    import pyproj
    import numpy as np
    import shapely
    from shapely.geometry import box, mapping

    from rasteret_core.testing.synthetic import TileGrid, s2_like_item, write_scene

    base = TileGrid()
    extent = base.size * base.resolution
    columns = int(tiles ** 0.5 + 0.999)
    grids = {f"GQ{chr(ord('A') + k)}": TileGrid(x0=base.x0 + extent * (k % columns), y0=base.y0 - extent * (k // columns))
             for k in range(tiles)}
    days = [(FIRST_DAY + dt.timedelta(days=i)) for i in range(dates)]
    items = []
    for k, (code, grid) in enumerate(grids.items()):
        source = root / "bucket" / PREFIX / f"template-{code}"
        write_scene(source, grid, dt.datetime.combine(days[0], dt.time(5, 12), tzinfo=dt.timezone.utc), 5.0, seed=7 + k)
        for day in days:
            when = dt.datetime.combine(day, dt.time(5, 12), tzinfo=dt.timezone.utc)
            scene_id = f"S2A_43P{code}_{when:%Y%m%d}_0_L2A"
            folder = root / "bucket" / PREFIX / scene_id
            if not folder.exists():
                folder.symlink_to(source, target_is_directory=True)
            items.append(s2_like_item(scene_id, when, grid, 5.0, href_base=f"s3://{BUCKET}/{PREFIX}"))
    items_file = root / "items.json"
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": items}))

    to_lonlat = pyproj.Transformer.from_crs(base.epsg, 4326, always_xy=True).transform
    x0 = min(g.bounds[0] for g in grids.values())
    y0 = min(g.bounds[1] for g in grids.values())
    x1 = max(g.bounds[2] for g in grids.values())
    y1 = max(g.bounds[3] for g in grids.values())
    side = int(aois ** 0.5 + 0.999)
    step_x, step_y = (x1 - x0) / (side + 1), (y1 - y0) / (side + 1)
    features = []
    for i in range(aois):
        cx, cy = x0 + step_x * (1 + i % side), y0 + step_y * (1 + i // side)
        field = shapely.transform(box(cx - 300, cy - 300, cx + 300, cy + 300),
                                  lambda xy: np.column_stack(to_lonlat(xy[:, 0], xy[:, 1])))
        features.append({"type": "Feature", "properties": {"name": f"field_{i:03d}"}, "geometry": mapping(field)})
    aoi_file = root / "aois.geojson"
    aoi_file.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return items_file, aoi_file, [d.isoformat() for d in days]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextlib.contextmanager
def dask_cluster(workers: int, env: dict[str, str]):
    """``dask scheduler`` and ``dask worker --nworkers N`` as processes on 127.0.0.1; yields the
    scheduler address (None for ``workers == 0``: runs compute in their own process)."""
    if not workers:
        yield None
        return
    import socket

    import distributed

    with socket.socket() as sock:  # a free port for the scheduler
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nworkers", str(workers),
                                   "--nthreads", "1", "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


def run(dates: int, aois: int, project: Path, label: str, keep: Path | None, dask_workers: int = 0,
        tiles: int = 4, quick_daemon: bool = False) -> dict:
    import dagster as dg

    from rasteret_core.testing.object_store import ObjectStoreServer
    from rasteret_pipelines.local_deploy import LocalDeployment

    root = Path(keep or tempfile.mkdtemp(prefix="rasteret-pipeline-bench-"))
    items, aoi_file, days = make_data(root, dates, aois, tiles)
    names = [f"field_{i:03d}" for i in range(aois)]
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(project / "dagster.yaml", home / "dagster.yaml")
    with ObjectStoreServer(buckets={BUCKET: root / "bucket"}, latency=(0.02, 0.08)) as store:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_"))}
        env.update({
            "RASTERET_STAC_SOURCE": str(items), "RASTERET_STORAGE": str(root / "storage"),
            "RASTERET_S3_ENDPOINT": store.endpoint_url, "RASTERET_AOIS": str(aoi_file),
            "RASTERET_START_DATE": days[0], "RASTERET_SENSOR_INTERVAL": "5", "PYTHONPATH": str(project),
        })
        worker_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        worker_env.update(AWS_ENDPOINT_URL=store.endpoint_url, PYTHONPATH=str(project))
        with dask_cluster(dask_workers, worker_env) as address, \
                LocalDeployment(home, {**env, "RASTERET_DASK_ADDRESS": address or ""}, project=project,
                                daemon=QUICK_DAEMON if quick_daemon else None) as dep, \
                dg.DagsterInstance.from_config(str(home)) as instance:
            dynamic = "aois" in {p.name for p in _partitions_defs(dep)}
            if dynamic:  # ready = the AOI source's partitions exist (the sensor's first tick)
                dep.wait_until(lambda: len(instance.get_dynamic_partitions("aois")) == aois, 300, what="AOI partitions")
            first, last = sorted(names)[0], sorted(names)[-1]
            rectangle = (f"{first}|{days[0]}", f"{last}|{days[-1]}")
            store.reset_stats()
            load_before = os.getloadavg()
            started = time.perf_counter()
            backfill = dep.launch_backfill({"scene_collection": (days[0], days[-1]), "ndvi": rectangle,
                                            "ndvi_stats": rectangle}, title=f"bench {dates}x{aois}")
            launched_at = time.time()
            status = dep.wait_for_backfill(backfill, timeout=7200)
            wall = time.perf_counter() - started
            load_after = os.getloadavg()
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill}))
            records = [r for r in (instance.get_run_record_by_id(x.run_id) for x in runs) if r]
            durations = sorted(((r.end_time or 0) - (r.start_time or 0)) for r in records)
            timing = orchestration(records, launched_at, wall)
            peaks = run_peaks(instance, {r.dagster_run.run_id for r in records})
            ndvi_done = len(instance.get_materialized_partitions(dg.AssetKey("ndvi")))
        instance_bytes = folder_size(home)
        storage_bytes = folder_size(root / "storage")
        requests = store.stats.requests
        reads = [(r.path, r.range) for r in store.stats.log if r.method == "GET" and r.range]
    pairs = dates * aois
    result = {
        "label": label, "dates": dates, "aois": aois, "date_aoi_partitions": pairs, "tiles": tiles, "dask_workers": dask_workers,
        "backfill_loop_s": QUICK_LOOP_S if quick_daemon else 30,
        "backfill_status": status.get("status"), "runs": len(runs), "wall_s": round(wall, 1),
        "partitions_per_min": round(pairs / wall * 60, 1), "ndvi_partitions_materialized": ndvi_done,
        "requests": requests, "requests_per_run": round(requests / max(len(runs), 1), 1),
        # the same byte range of the same file fetched again (a tile read twice for one date)
        "range_reads": len(reads), "repeated_range_reads": len(reads) - len(set(reads)),
        "run_seconds": [round(d, 1) for d in durations], **timing,
        "run_peak_rss_mib": peaks,
        "instance_bytes": instance_bytes, "storage_bytes": storage_bytes,
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(), "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return result


def orchestration(records: list, launched_at: float, wall: float) -> dict:
    """Where the wall time went: launch to the first run's start, the time no run was executing
    (daemon ticks, the queue, process launches between dependency levels), and each run's wait
    from creation to start."""
    spans = sorted(((r.start_time, r.end_time) for r in records if r.start_time and r.end_time))
    busy, cursor = 0.0, launched_at
    for start, end in spans:
        if end > cursor:
            busy += end - max(start, cursor)
            cursor = end
    waits = sorted(r.start_time - r.create_timestamp.timestamp() for r in records if r.start_time)
    return {
        "launch_to_first_run_s": round(spans[0][0] - launched_at, 1) if spans else None,
        "some_run_executing_s": round(busy, 1),
        "no_run_executing_s": round(wall - busy, 1),
        "run_seconds_total": round(sum(e - s for s, e in spans), 1),
        "run_wait_s_median": round(waits[len(waits) // 2], 1) if waits else None,
        "run_wait_s_max": round(waits[-1], 1) if waits else None,
    }


def run_peaks(instance, run_ids: set[str]) -> dict:
    """Peak RSS (MiB) of the NDVI run processes, from the runs' ``run_peak_rss_mib`` metadata."""
    import dagster as dg

    values, cursor = {}, None
    while True:  # the event log answers at most 10,000 records at a time
        page = instance.fetch_materializations(dg.AssetKey("ndvi"), limit=10_000, cursor=cursor)
        for record in page.records:
            if record.run_id in run_ids:
                value = record.asset_materialization.metadata.get("run_peak_rss_mib")
                if value is not None:
                    values[record.run_id] = float(value.value)
        if not page.has_more:
            break
        cursor = page.cursor
    peaks = sorted(values.values())
    return {"runs": len(peaks), "max": peaks[-1], "median": peaks[len(peaks) // 2]} if peaks else {}


def _partitions_defs(dep) -> list:
    """The dynamic partition sets the code location declares (none in designs before AOIs were data)."""
    data = dep.graphql("{ assetNodes { partitionDefinition { dimensionTypes { name dynamicPartitionsDefinitionName } } } }")
    found = set()
    for node in data["assetNodes"]:
        for dim in (node["partitionDefinition"] or {}).get("dimensionTypes") or []:
            if dim.get("dynamicPartitionsDefinitionName"):
                found.add(dim["dynamicPartitionsDefinitionName"])
    return [type("P", (), {"name": n}) for n in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=3)
    parser.add_argument("--aois", type=int, default=12)
    parser.add_argument("--project", type=Path, default=PROJECT, help="checkout whose definitions run")
    parser.add_argument("--label", default="")
    parser.add_argument("--tiles", type=int, default=4, help="adjacent synthetic tiles the AOIs spread over")
    parser.add_argument("--quick-daemon", action="store_true",
                        help="run the daemon with a 3 s backfill loop instead of Dagster's fixed 30 s (what the loop costs)")
    parser.add_argument("--dask-workers", type=int, default=0,
                        help="compute NDVI dates on a local dask scheduler with this many worker processes")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data and instance in this folder")
    args = parser.parse_args(argv)
    result = run(args.dates, args.aois, args.project.resolve(), args.label or "current", args.keep, args.dask_workers,
                 args.tiles, args.quick_daemon)
    out = HERE / "results" / f"pipeline-{args.dates}x{args.aois}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["backfill_status"] == "COMPLETED_SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
