"""The main job (``make demo``): the whole pipeline end to end on embedded local data.

With no cloud access needed, it generates Sentinel-2-like scenes over the shipped Bangalore
AOIs (cached in ``.rasteret_demo/``), serves them from a local S3-compatible server on
127.0.0.1, writes their STAC items to a local items file, and materialises
``scene_collection``, ``ndvi`` and ``ndvi_stats`` for a few dates through a real Dagster
instance (``.rasteret_demo/dagster_home``). ``python -m rasteret_pipelines.demo ui`` opens the
Dagster UI on the same data (``make ui``); ``... demo serve`` only serves the scenes, for the
library quick start offline (``AWS_ENDPOINT_URL`` plus the items file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_core.testing.synthetic import s2_like_item, TileGrid, write_scene

PROJECT = Path(__file__).resolve().parents[1]
BUCKET = "sentinel-cogs"
PREFIX = "sentinel-s2-l2a-cogs/43/P/GQ/2024/1"
# (day of January 2024, cloud cover %): a 5-day revisit with one cloudy date
DATES = [(5, 4.0), (10, 38.0), (15, 11.0)]


def first_date() -> str:
    return f"2024-01-{DATES[0][0]:02d}"


def last_date() -> str:
    return f"2024-01-{DATES[-1][0]:02d}"


def demo_dir() -> Path:
    return Path(os.environ.get("RASTERET_DEMO_DIR", PROJECT / ".rasteret_demo"))


def prepare_data(root: Path) -> Path:
    """Write the demo scenes and their items file once; returns the items file."""
    grid = TileGrid()
    items = []
    for day, cover in DATES:
        when = dt.datetime(2024, 1, day, 5, 12, 41, tzinfo=dt.timezone.utc)
        scene_id = f"S2A_43PGQ_{when:%Y%m%d}_0_L2A"
        write_scene(root / "bucket" / PREFIX / scene_id, grid, when, cover, seed=7)
        items.append(s2_like_item(scene_id, when, grid, cover, href_base=f"s3://{BUCKET}/{PREFIX}"))
    path = root / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}, indent=1))
    return path


def demo_environment(root: Path, endpoint: str) -> dict[str, str]:
    """The settings that point the unchanged definitions at the demo data."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    return {
        "RASTERET_STAC_SOURCE": str(root / "items.json"),
        "RASTERET_STORAGE": str(root / "storage"),
        "AWS_ENDPOINT_URL": endpoint,
        "RASTERET_START_DATE": first_date(),  # the demo's partitions span only its dates
        "RASTERET_END_DATE": last_date(),
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def run_pipeline() -> int:
    """Materialise every asset for the demo dates and print where the outputs are."""
    import dagster as dg

    from rasteret_core.products.timeseries import read_stats
    from rasteret_pipelines.definitions import defs
    from rasteret_pipelines.defs.partitions import AOIS, partition_key, sync_aois
    from rasteret_pipelines.settings import aoi_file, aoi_names

    instance = dg.DagsterInstance.get()
    sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor does this under the daemon
    aois = instance.get_dynamic_partitions(AOIS.name)
    collection = [defs.get_assets_def("scene_collection")]
    downstream = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    started = time.perf_counter()
    runs = 0
    for day, _ in DATES:
        key = f"2024-01-{day:02d}"
        result = dg.materialize(collection, partition_key=key, instance=instance, resources=defs.resources,
                                run_config=quiet, raise_on_error=True)
        runs += 1
        meta = result.asset_materializations_for_node("scene_collection")[0].metadata
        print(f"[{key}] collection: {meta['scenes'].value} scene(s), {meta['requests'].value} header requests")
        # one run for every AOI of the date: each scene's tiles are read once for all of them
        tags = {"dagster/asset_partition_range_start": partition_key(key, aois[0]),
                "dagster/asset_partition_range_end": partition_key(key, aois[-1])}
        result = dg.materialize(downstream, instance=instance, resources=defs.resources, tags=tags,
                                run_config=quiet, raise_on_error=True)
        runs += 1
        for event in result.asset_materializations_for_node("ndvi"):
            meta = event.metadata
            aoi = event.partition.split("|")[0]
            print(f"[{key}] {aoi}: {meta['rasters'].value} NDVI raster(s); the date's reads, shared by"
                  f" {meta['aois_sharing_reads'].value} AOIs: {meta['requests'].value} range requests,"
                  f" {meta['header_requests'].value} header requests")
    # the product: every AOI's time series and chart, from the whole statistics table
    dg.materialize([defs.get_assets_def("ndvi_timeseries")], instance=instance, resources=defs.resources,
                   run_config=quiet, raise_on_error=True)
    runs += 1
    storage = Path(os.environ["RASTERET_STORAGE"])
    table = read_stats(storage / "ndvi_stats")
    print(f"\n{runs} runs in {time.perf_counter() - started:.1f} s (Dagster instance: {os.environ['DAGSTER_HOME']})")
    print(f"collection: {storage / 'collection'}")
    print(f"NDVI GeoTIFFs: {storage / 'ndvi'} ({len(list((storage / 'ndvi').rglob('*.tif')))} files)")
    print(f"statistics: {storage / 'ndvi_stats'}")
    print(f"time series and charts: {storage / 'ndvi_timeseries'} (also on the ndvi_timeseries asset page)\n")
    print(table[["date", "aoi", "scene_ids", "coverage", "valid_fraction", "mean", "median"]].to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "ui", "serve"],
                        help="run: materialise the demo (default); ui: open the Dagster UI on it; "
                             "serve: only serve the demo scenes (for the library quick start)")
    parser.add_argument("--port", type=int, default=None, help="UI port (3000) or, with serve, the S3 port (9000)")
    args = parser.parse_args(argv)
    busy = _busy_port(args)
    if busy:
        print(busy, file=sys.stderr)
        return 1
    root = demo_dir()
    print(f"demo data in {root} (generated once)")
    prepare_data(root)
    s3_port = (args.port or 9000) if args.command == "serve" else 0
    with ObjectStoreServer(buckets={BUCKET: root / "bucket"}, port=s3_port) as server:
        if args.command == "serve":
            return _serve(server, root)
        os.environ.update(demo_environment(root, server.endpoint_url))
        print(f"local S3-compatible server: {server.endpoint_url} (bucket {BUCKET})")
        if args.command == "run":
            return run_pipeline()
        return _ui(args.port or 3000)


def _busy_port(args: argparse.Namespace) -> str | None:
    """One line saying which fixed port is taken and how to choose another, or ``None``."""
    import socket

    if args.command == "run":
        return None
    port = args.port or (9000 if args.command == "serve" else 3000)
    target = "serve-demo" if args.command == "serve" else "ui"
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return (f"port {port} on 127.0.0.1 is in use (an earlier `make {target}` still running?);"
                    f" choose another: make {target} PORT={port + 1}")
    return None


def _serve(server: ObjectStoreServer, root: Path) -> int:
    """Serve the demo scenes until interrupted, saying how to point the library at them."""
    print(f"serving s3://{BUCKET}/ at {server.endpoint_url} (Ctrl-C stops it); in another shell:\n")
    print(f"  export AWS_ENDPOINT_URL={server.endpoint_url}")
    print(f"  items file for DataSource.from_items_file: {root / 'items.json'}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    return 0


def _ui(port: int) -> int:
    """``dg dev`` on the demo settings until interrupted (its process group is stopped)."""
    # `dg dev -w` is Dagster 1.13's local command and, given -w, loads workspace.yaml as it is;
    # started in DAGSTER_HOME so the project's own dagster.yaml is not mistaken for the instance's.
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dg"), "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=os.environ.get("DAGSTER_HOME", PROJECT), start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))},
    )
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops it)")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a terminated demo must not leave dagster dev behind
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
