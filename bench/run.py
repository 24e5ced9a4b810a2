"""The benchmark: ``python -m bench.run [--quick] [--name NAME]`` (``make bench`` / ``make bench-quick``).

Generates (once) Sentinel-2-like COGs, serves them from a latency-modelled object store in
its own process, runs every peer x workload in a fresh worker process, checks every peer's
pixels against rasterio's, and writes ``bench/results/<name>.json``, ``<name>.md`` and
``<name>.png``. See ``bench/README.md`` for the method.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import BENCH, CACHE, REPO, data_dir, ensure_data

RESULTS = BENCH / "results"
PY312_VENV = CACHE / "venv312"
BAND_MAP = {"B04": "red", "B08": "nir"}
BANDS = ["B04", "B08"]
BUCKET = "sentinel-cogs"  # a valid S3 bucket name: this project reads it as s3:// through AWS_ENDPOINT_URL
TILE_ID = "29RKH"

MODES = {
    # quick: a 5490 x 5490 scene (the 20 m grid), fewer dates/AOIs/repetitions, no full-resolution scene
    "quick": dict(size=5490, harvest_items=50, K=12, T=8, warmup=1, reps=2, naive_reps=1,
                  scale_K=[2, 4, 8], scale_T=[1, 2, 4], scale_reps=1, scale_peers=["rasteret"],
                  overview=0, full_res=True, threads=16),
    "full": dict(size=10980, harvest_items=50, K=12, T=8, warmup=1, reps=5, naive_reps=1,
                 scale_K=[3, 6, 12], scale_T=[2, 4, 8], scale_reps=2, scale_peers=["rasteret", "gdal-threads"],
                 overview=1, full_res=True, threads=16),
}
PEERS = ["rasterio-naive", "gdal-threads", "async-geotiff", "rasteret-0.4.1", "rasteret"]
LONG_K, LONG_T = 4, 24  # the long time series: few AOIs, many dates
SMALL_BACKLOG = 5  # Python's http.server default, some proxies and small S3-compatible servers

def log(msg: str) -> None:
    print(msg, flush=True)


# --- server -----------------------------------------------------------------------------------
class Server:
    def __init__(self, bucket_dir: Path, latency: tuple[float, float], bandwidth: float, backlog: int = 1024) -> None:
        self.latency, self.bandwidth, self.backlog = latency, bandwidth, backlog
        cmd = [sys.executable, "-m", "bench.server", "--bucket", f"{BUCKET}={bucket_dir}",
               "--latency-min", str(latency[0]), "--latency-max", str(latency[1]), "--bandwidth", str(bandwidth),
               "--backlog", str(backlog)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the benchmark object store did not start")
        self.endpoint = json.loads(line)["endpoint"]

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class CpuAccount:
    """CPU that others spent while workers ran: ``/proc/stat``'s busy time minus this
    process's, its finished children's (the workers) and the servers' CPU, plus the time the
    hypervisor stole. A load average cannot say this: the benchmark's own threads (tuned GDAL
    runs 16) raise it."""

    def __init__(self, servers: list["Server"]) -> None:
        self.servers = servers
        self.other_s = self.steal_s = self.wall_s = 0.0
        self._tck = os.sysconf("SC_CLK_TCK")

    def _now(self) -> tuple[float, float, float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
               + sum(server.cpu_s() for server in self.servers))
        return (user + nice + system + irq + softirq) / self._tck, steal / self._tck, own, time.perf_counter()

    def __enter__(self) -> "CpuAccount":
        self._start = self._now()
        return self

    def __exit__(self, *exc: Any) -> None:
        busy, steal, own, wall = (b - a for a, b in zip(self._start, self._now()))
        self.other_s += max(0.0, busy - own)
        self.steal_s += steal
        self.wall_s += wall

    def as_dict(self, cores: int) -> dict:
        share = (self.other_s + self.steal_s) / (self.wall_s * cores) if self.wall_s else 0.0
        return {"other_s": self.other_s, "steal_s": self.steal_s, "wall_s": self.wall_s, "cores": cores,
                "share_of_cores": share}


# --- scenario ---------------------------------------------------------------------------------
def make_dates(n: int) -> list[dt.datetime]:
    start = dt.datetime(2024, 1, 5, 11, 21, 29, tzinfo=dt.timezone.utc)
    return [start + dt.timedelta(days=5 * i) for i in range(n)]


def scene_id(when: dt.datetime, i: int = 0) -> str:
    return f"S2{'AB'[i % 2]}_{TILE_ID}_{when:%Y%m%d}_{i // 2}_L2A"


def scenes_for(dates: list[dt.datetime]) -> list[dict]:
    return [{"id": scene_id(d), "datetime": d.isoformat(), "keys": {b: f"{scene_id(d)}/{b}.tif" for b in BANDS}}
            for d in dates]


def footprint(header) -> tuple[dict, list[float]]:
    import shapely
    from affine import Affine
    from rasterio.warp import transform_geom

    t = Affine(*header.transform)
    left, top = t.c, t.f
    right, bottom = left + t.a * header.width, top + t.e * header.height
    geom = transform_geom(f"EPSG:{header.crs_epsg}", "EPSG:4326", shapely.box(left, bottom, right, top).__geo_interface__)
    xs = [p[0] for p in geom["coordinates"][0]]
    ys = [p[1] for p in geom["coordinates"][0]]
    return geom, [min(xs), min(ys), max(xs), max(ys)]


def stac_item(scene: dict, href_base: str, geom: dict, bbox: list[float]) -> dict:
    assets = {}
    for band in BANDS:
        assets[BAND_MAP[band]] = {
            "href": f"{href_base}/{scene['keys'][band]}",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}],
        }
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene["id"], "collection": "sentinel-2-l2a",
        "geometry": geom, "bbox": bbox,
        "properties": {"datetime": scene["datetime"].replace("+00:00", "Z"), "platform": "sentinel-2b",
                       "eo:cloud_cover": 3.0, "proj:epsg": 32629},
        "links": [], "assets": assets, "stac_extensions": [],
    }


def make_aois(header, k: int, seed: int = 5) -> list[dict]:
    """``k`` farm-sized squares (0.5-5 km) inside the scene, as EPSG:4326 polygons + their windows."""
    import numpy as np
    import shapely
    from affine import Affine
    from pyproj import Transformer

    from rasteret_core.raster.geometry import to_crs
    from rasteret_core.raster.windows import aoi_window

    rng = random.Random(seed)
    t = Affine(*header.transform)
    left, top = t.c, t.f
    extent = t.a * header.width
    to_ll = Transformer.from_crs(header.crs_epsg, 4326, always_xy=True)
    aois = []
    while len(aois) < k:
        side = rng.uniform(500, 5000)
        x = rng.uniform(left + 0.2 * extent, left + extent - side)
        y = rng.uniform(top - extent + side, top)
        ring = [(x, y), (x + side, y), (x + side, y - side), (x, y - side), (x, y)]
        poly = shapely.Polygon([to_ll.transform(px, py) for px, py in ring])
        crop = aoi_window(header, to_crs(poly, header.crs_epsg))
        if crop is None:
            continue
        w = crop.window
        bits = base64.b64encode(np.packbits(crop.outside.astype(np.uint8))).decode()
        aois.append({"id": f"aoi{len(aois):02d}", "side_m": round(side), "geometry": shapely.geometry.mapping(poly),
                     "window": [int(w.col_off), int(w.row_off), int(w.width), int(w.height)],
                     "mask": {"shape": [int(w.height), int(w.width)], "bits": bits}})
    return aois


def tiles_for_windows(header, windows: list[list[int]]) -> set[int]:
    tiles = set()
    for c, r, w, h in windows:
        for tr in range(r // header.tile_height, (r + h - 1) // header.tile_height + 1):
            for tc in range(c // header.tile_width, (c + w - 1) // header.tile_width + 1):
                tiles.add(tr * header.tiles_across + tc)
    return tiles


def decode_cost(files: list[tuple[Any, Path]], tiles: list[int], samples: int = 24) -> float:
    """CPU seconds to decode one tile on one core, as the reader does it (``decode_tile`` with its
    per-thread buffer: libdeflate + predictor), mean over up to ``samples`` of ``tiles`` of each
    ``(header, path)`` file."""
    from rasteret_core.cog.codecs import decode_tile

    step = max(1, len(tiles) // samples)
    picks = sorted(tiles)[::step][:samples]
    times = []
    for header, path in files:
        with open(path, "rb") as fh:
            blobs = []
            for t in picks:
                fh.seek(int(header.tile_offsets[t]))
                blobs.append(fh.read(int(header.tile_byte_counts[t])))
        decode_tile(header, blobs[0], reuse_buffer=True)  # the buffer exists, as in a running read
        for data in blobs:
            t0 = time.thread_time()
            decode_tile(header, data, reuse_buffer=True)
            times.append(time.thread_time() - t0)
    return statistics.mean(times)


def transport_cost(server: "Server", ranges: list[tuple[int, int]], files: int, threads: int = 16) -> dict:
    """CPU seconds per byte that moving the bytes costs on this machine, measured: a lean client
    (keep-alive ``http.client`` connections, each body read into a preallocated buffer) fetches
    ``ranges`` (the reader's own coalesced requests, so the per-request costs are the fewest the
    reader's plan allows) from ``files`` URLs, and the client's and the server's CPU are both
    counted: they share the cores with decoding."""
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    host = urlsplit(server.endpoint)
    local = threading.local()
    jobs = [(f"/{BUCKET}/probe{f}/B04.tif", start, end - start) for f in range(files) for start, end in ranges]

    def get(job) -> int:
        path, off, cnt = job
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        conn.request("GET", path, headers={"Range": f"bytes={off}-{off + cnt - 1}"})
        resp = conn.getresponse()
        buf = bytearray(cnt)
        n = resp.readinto(buf)
        resp.read()
        return n

    r0, s0 = resource.getrusage(resource.RUSAGE_SELF), server.cpu_s()
    with ThreadPoolExecutor(threads) as pool:
        got = sum(pool.map(get, jobs))
    r1, s1 = resource.getrusage(resource.RUSAGE_SELF), server.cpu_s()
    client = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"client_s_per_byte": client / got, "server_s_per_byte": (s1 - s0) / got, "probe_bytes": got,
            "probe_requests": len(jobs), "bytes_per_request": got / len(jobs)}


def reader_ranges(header, windows: list[list[int]]) -> list[tuple[int, int]]:
    """The byte ranges this project's reader requests for ``windows`` of one file (its plan,
    with its default coalescing)."""
    from rasterio.windows import Window

    from rasteret_core.cog import ReaderOptions
    from rasteret_core.cog.reader import plan_requests

    plan = plan_requests([(header, Window(*w)) for w in windows], ReaderOptions())
    return [(m.start, m.end) for fr in plan for m in fr.merged]


def physical_limit(requests: int, nbytes: int, decode_s: float, latency: tuple[float, float], bandwidth: float,
                   concurrency: int, cores: int, transport_s: float = 0.0, server_s: float = 0.0) -> dict:
    """The fastest any client could read this on this machine, and its components.

    Requests overlap up to ``concurrency`` (latency bound), bytes stream at ``bandwidth`` per
    connection, and the CPU work that cannot be avoided (decoding, plus receiving the bytes and
    the server sending them, which share the same cores) divides over ``cores``. Nothing can be
    decoded before the first byte arrives, so one minimum latency comes first.
    """
    lat_mean = sum(latency) / 2
    parts = {
        "latency_s": requests * lat_mean / concurrency,
        "bandwidth_s": nbytes / (bandwidth * max(1, min(concurrency, requests))),
        "cpu_s": (decode_s + transport_s + server_s) / cores,
    }
    first = latency[0] if requests else 0.0
    return {**parts, "first_byte_s": first, "limit_s": first + max(parts.values()), "requests": requests,
            "bytes": nbytes, "concurrency": concurrency, "cores": cores,
            "cpu_components_s": {"decode": decode_s, "client_transport": transport_s, "server": server_s}}


# --- running workers ---------------------------------------------------------------------------
def run_worker(peer: str, spec: dict, workdir: Path, timeout: float) -> dict:
    spec = dict(spec, peer=peer)
    tag = f"{spec['workload']}-{spec.get('tag', '')}-{peer}"
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    if peer == "rasteret-0.4.1":
        cmd = [str(PY312_VENV / "bin" / "python"), str(BENCH / "peer_rasteret041.py"), str(spec_path), str(out_path)]
    else:
        cmd = [sys.executable, "-m", "bench.worker", str(spec_path), str(out_path)]
    return run_json_worker(cmd, out_path, timeout)


def run_json_worker(cmd: list[str], out_path: Path, timeout: float) -> dict:
    """Run a benchmark worker process; the JSON document it wrote, or why it wrote none."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(cmd, cwd=REPO, timeout=timeout, capture_output=True, text=True, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    if not out_path.exists():
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        return {"ok": False, "error": f"worker exited with {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(out_path.read_text())


def summarise(doc: dict) -> dict:
    timed = [r for r in doc["runs"] if not r["warmup"]]
    med = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    return {
        "wall_s": med("wall_s"), "walls_s": [round(r["wall_s"], 4) for r in timed],
        "cpu_s": med("cpu_s"), "requests": int(med("requests")), "bytes": int(med("bytes")),
        "not_ok": int(med("not_ok")), "peak_rss_mb": max(r["peak_rss_mb"] for r in doc["runs"]),
        "rss_growth_mb": max(r["rss_growth_mb"] for r in timed), "pixels": timed[-1]["pixels"],
        "output_mb": timed[-1]["pixels"] * 2 / 1e6, "client": timed[-1].get("client", {}),
        "peak_connections": max(r["peak_connections"] for r in timed), "runs": len(timed),
    }


def compare(outputs: dict, reference: dict) -> str | None:
    """None when equal, else a short description of the first differences."""
    if outputs.keys() != reference.keys():
        missing = sorted(reference.keys() - outputs.keys())[:3]
        extra = sorted(outputs.keys() - reference.keys())[:3]
        return f"different outputs (missing {missing}, unexpected {extra})"
    def norm(a: str, b: str) -> tuple[str, str]:
        # a peer that stores no overview headers reports "overviews -1": compare the rest
        if isinstance(a, str) and " overviews -1 " in a:
            import re

            return a.replace(" overviews -1 ", " "), re.sub(r" overviews \d+ ", " ", b)
        return a, b

    bad = [k for k in reference if (lambda p: p[0] != p[1])(norm(outputs[k], reference[k]))]
    if bad:
        return f"{len(bad)}/{len(reference)} outputs differ from rasterio's (e.g. {bad[0]})"
    return None


def peer_available(peer: str) -> str | None:
    """None if the peer can run, else why it is skipped."""
    if peer == "async-geotiff":
        try:
            import async_geotiff  # noqa: F401
            import obstore  # noqa: F401
        except ImportError as exc:
            return f"async-geotiff/obstore not installed ({exc}); `make bench` installs them"
    if peer == "rasteret-0.4.1":
        py = PY312_VENV / "bin" / "python"
        if not py.exists():
            return "no Python 3.12 virtualenv with rasteret 0.4.1 (bench/.cache/venv312); `make bench` creates it"
        probe = subprocess.run([str(py), "-c", "import rasteret, sys; print(rasteret.__version__)"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            return f"rasteret 0.4.1 does not import: {probe.stderr.strip().splitlines()[-1:]}"
    return None


# --- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rasteret read benchmark")
    parser.add_argument("--quick", action="store_true", help="small scene, fewer sizes and repetitions (< 2 min)")
    parser.add_argument("--name", help="results file name (default: quick / full)")
    parser.add_argument("--peers", help="comma-separated subset of: " + ",".join(PEERS))
    parser.add_argument("--latency", default="0.02,0.08", help="first-byte latency range in seconds (uniform)")
    parser.add_argument("--bandwidth", type=float, default=100e6, help="per-connection bandwidth, bytes/s")
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    name = args.name or mode
    peers = args.peers.split(",") if args.peers else PEERS
    lat = tuple(float(x) for x in args.latency.split(","))
    lat = (lat[0], lat[-1])
    started = time.perf_counter()
    cores = os.cpu_count() or 1

    log(f"== rasteret benchmark ({mode}) ==")
    meta = ensure_data(cfg["size"], log=log)
    bucket_dir = data_dir(cfg["size"]) / "bucket"
    workdir = CACHE / f"run-{name}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)

    server = Server(bucket_dir, lat, args.bandwidth)
    log(f"object store {server.endpoint}: latency U({lat[0] * 1000:.0f}, {lat[1] * 1000:.0f}) ms, "
        f"{args.bandwidth / 1e6:.0f} MB/s per connection (own process)")
    try:
        return _run(args, cfg, mode, name, peers, lat, server, meta, bucket_dir, workdir, started, cores)
    finally:
        server.stop()


def _run(args, cfg, mode, name, peers, lat, server, meta, bucket_dir, workdir, started, cores) -> int:
    from rasteret_core.cog import read_header
    from rasteret_core.collection import build_collection
    from rasteret_core.stac.sources import DataSource

    endpoint = server.endpoint
    header = read_header(f"{endpoint}/{BUCKET}/setup/x/B04.tif")
    geom, bbox = footprint(header)
    all_dates = make_dates(max(cfg["T"], max(cfg["scale_T"]), LONG_T))
    scenes = scenes_for(all_dates)
    aois = make_aois(header, max(cfg["K"], max(cfg["scale_K"])))
    n_prefixes = cfg["warmup"] + max(cfg["reps"], cfg["scale_reps"])

    # this project's collections: built once per URL prefix, before (and not part of) the timed reads
    t0 = time.perf_counter()
    collections = []
    # s3:// hrefs, resolved through AWS_ENDPOINT_URL: the same collections read from either server
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for i in range(n_prefixes):
        base = f"s3://{BUCKET}/rep{i}"
        items = [stac_item(s, base, geom, bbox) for s in scenes]
        items_path = workdir / f"items-rep{i}.json"
        items_path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
        source = DataSource.from_items_file(items_path, BAND_MAP, name="bench")
        root = workdir / "collections" / f"rep{i}"
        report = build_collection(source, root=root, date_range=(all_dates[0].date(), all_dates[-1].date()),
                                  bands=BANDS, progress=False)
        if report.failures or report.scenes != len(scenes):
            raise SystemExit(f"collection build failed: {report.message} {report.failures[:2]}")
        collections.append(str(root))
    log(f"built {n_prefixes} collections of {len(scenes)} scenes x {len(BANDS)} bands "
        f"(one per URL prefix) in {time.perf_counter() - t0:.1f} s (not timed)")

    skipped = {p: why for p in peers if (why := peer_available(p))}
    for p, why in skipped.items():
        log(f"NOTE: skipping {p}: {why}")
    run_peers = [p for p in peers if p not in skipped]

    if "rasteret-0.4.1" in run_peers:
        t0 = time.perf_counter()
        spec_path = workdir / "build041.spec.json"
        spec_path.write_text(json.dumps({"endpoint": endpoint, "bucket": BUCKET, "bands": BANDS, "scenes": scenes,
                                         "footprint": geom, "collections041": [
                                             str(workdir / "collections041" / f"rep{i}") for i in range(n_prefixes)]}))
        proc = subprocess.run([str(PY312_VENV / "bin" / "python"), str(BENCH / "peer_rasteret041.py"), "build",
                               str(spec_path)], cwd=REPO, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["?"])[-1]
            skipped["rasteret-0.4.1"] = f"its collection build failed: {why}"
            run_peers.remove("rasteret-0.4.1")
            log(f"NOTE: skipping rasteret-0.4.1: {skipped['rasteret-0.4.1']}")
        else:
            log(f"built Rasteret 0.4.1 collections (one per URL prefix) in {time.perf_counter() - t0:.1f} s (not timed)")

    harvest_items = [{"id": f"h{i:03d}", "keys": {b: f"h{i:03d}/{b}.tif" for b in BANDS}}
                     for i in range(cfg["harvest_items"])]
    harvest_stac = [stac_item({"id": it["id"], "datetime": scenes[0]["datetime"], "keys": it["keys"]},
                              f"{endpoint}/{BUCKET}/__PREFIX__", geom, bbox) for it in harvest_items]
    base_spec = {"endpoint": endpoint, "bucket": BUCKET, "bands": BANDS, "band_map": BAND_MAP, "size": cfg["size"],
                 "warmup": cfg["warmup"], "reps": cfg["reps"], "threads": cfg["threads"], "collections": collections,
                 "tile": meta["tile"], "footprint": geom,
                 "collections041": [str(workdir / "collections041" / f"rep{i}") for i in range(n_prefixes)]}
    concurrency = 64  # this project's default max_concurrency
    band_headers = {b: read_header(f"{endpoint}/{BUCKET}/setup/x/{b}.tif") for b in BANDS}
    # moving bytes costs CPU on both ends, on the same two cores as decoding: measured per tile
    probe_ranges = reader_ranges(header, [a["window"] for a in aois[:cfg["K"]]])
    transport = transport_cost(server, probe_ranges, files=4)
    log(f"transport cost (measured, lean keep-alive client, the reader's {len(probe_ranges)} coalesced requests "
        f"x 4 files, {transport['bytes_per_request'] / 1e6:.2f} MB each): client "
        f"{transport['client_s_per_byte'] * 1e9:.2f} ms, server {transport['server_s_per_byte'] * 1e9:.2f} ms CPU per MB")

    def limit_for(overview: int | None, tiles: list[int], nfiles: int) -> dict:
        """The limit of reading ``tiles`` of a level (full resolution or ``overview``) from ``nfiles`` files."""
        levels = {b: h if overview is None else h.overviews[overview] for b, h in band_headers.items()}
        level = levels[BANDS[0]]
        decode = decode_cost([(levels[b], bucket_dir / f"{b}.tif") for b in BANDS], tiles)
        nbytes = sum(int(level.tile_byte_counts[t]) for t in tiles) * nfiles  # B08 tiles ~ B04 tiles
        ntiles = len(tiles) * nfiles
        limit = physical_limit(ntiles, nbytes, ntiles * decode, lat, args.bandwidth, concurrency, cores,
                               transport_s=nbytes * transport["client_s_per_byte"],
                               server_s=nbytes * transport["server_s_per_byte"])
        limit["decode_s_per_tile"] = decode
        return limit

    def aoi_spec(k: int, t: int, tag: str) -> dict:
        dates = all_dates[:t]
        chosen = [{k2: v for k2, v in a.items() if k2 != "mask"} for a in aois[:k]]
        return dict(base_spec, workload="aoi", tag=tag, aois=chosen, scenes=scenes[:t],
                    aoi_masks={a["id"]: a["mask"] for a in aois[:k]},
                    date_range=[dates[0].date().isoformat(), dates[-1].date().isoformat()])

    def aoi_limit(spec: dict) -> dict:
        tiles = sorted(tiles_for_windows(header, [a["window"] for a in spec["aois"]]))
        return limit_for(None, tiles, len(spec["scenes"]) * len(BANDS))

    def scene_spec(overview: int | None, tag: str) -> dict:
        level = header if overview is None else header.overviews[overview]
        return dict(base_spec, workload="scene", tag=tag, overview=overview, scenes=scenes[:1],
                    shape=[level.height, level.width], transform=list(level.transform)[:6], epsg=header.crs_epsg,
                    date_range=[all_dates[0].date().isoformat()] * 2)

    def scene_limit(overview: int | None) -> dict:
        level = header if overview is None else header.overviews[overview]
        return limit_for(overview, list(range(len(level.tile_offsets))), len(BANDS))

    workloads = []
    n_cogs = cfg["harvest_items"] * len(BANDS)
    workloads.append(("harvest", f"header harvest: open {n_cogs} COGs, read their headers",
                      dict(base_spec, workload="harvest", tag="", items=harvest_items, items_stac=harvest_stac),
                      physical_limit(n_cogs, n_cogs * 16384, 0.0, lat, args.bandwidth, concurrency, cores)))
    for wname, k, t in (("aoi", cfg["K"], cfg["T"]), (f"aoi-{LONG_K}x{LONG_T}", LONG_K, LONG_T)):
        spec = aoi_spec(k, t, wname)
        workloads.append((wname, f"AOI time series: {k} AOIs (0.5-5 km) x {t} dates x 2 bands", spec, aoi_limit(spec)))
    ov = cfg["overview"]
    level = header.overviews[ov]
    workloads.append(("scene-overview", f"large AOI: whole scene at overview {ov} ({level.width}x{level.height}) x 2 bands",
                      scene_spec(ov, "ovr"), scene_limit(ov)))
    if cfg["full_res"]:
        workloads.append(("scene-full", f"large AOI: whole scene at full resolution ({header.width}x{header.height}) x 2 bands",
                          scene_spec(None, "full"), scene_limit(None)))
    # the AOI workloads again against a server with Python's default accept queue (5)
    # each right after its large-backlog run, so the machine's drift between runs minutes apart
    # does not enter the comparison
    small = Server(bucket_dir, lat, args.bandwidth, backlog=SMALL_BACKLOG)
    for wname, desc, spec, limit in [w for w in workloads if w[0].startswith("aoi")]:
        at = next(i for i, w in enumerate(workloads) if w[0] == wname) + 1
        workloads.insert(at, (f"{wname}@backlog{SMALL_BACKLOG}", desc + f", server listen backlog {SMALL_BACKLOG}",
                              dict(spec, endpoint=small.endpoint, tag=spec["tag"] + "-small"), limit))
    try:
        return _run_workloads(args, cfg, mode, name, lat, meta, cores, started, workloads, run_peers, skipped,
                              workdir, transport, aoi_spec, {server.endpoint: server, small.endpoint: small})
    finally:
        small.stop()


def _run_workloads(args, cfg, mode, name, lat, meta, cores, started, workloads, run_peers, skipped, workdir,
                   transport, aoi_spec, servers: dict) -> int:
    results = {"name": name, "mode": mode, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": cores, "python": platform.python_version(), "platform": platform.platform()},
               "server": {"latency_s": list(lat), "bandwidth_Bps": args.bandwidth, "process": "separate"},
               "data": meta, "transport": transport, "load_at_start": os.getloadavg()[0], "skipped": skipped, "workloads": {}, "scaling": {}}
    order = [p for p in ["rasterio-naive", "gdal-threads", "async-geotiff", "rasteret-0.4.1", "rasteret"] if p in run_peers]
    account = CpuAccount(list(servers.values()))
    for wname, desc, spec, limit in workloads:
        log(f"\n-- {wname}: {desc}")
        cpu = limit["cpu_components_s"]
        log(f"   physical limit {limit['limit_s']:.3f} s = first byte {limit['first_byte_s']:.3f} + max(latency "
            f"{limit['latency_s']:.3f}, bandwidth {limit['bandwidth_s']:.3f}, CPU {limit['cpu_s']:.3f} = (decode "
            f"{cpu['decode']:.3f} + client transport {cpu['client_transport']:.3f} + server {cpu['server']:.3f}) / "
            f"{limit['cores']} cores); {limit['requests']} tiles, {limit['bytes'] / 1e6:.1f} MB"
            + (f", decode {limit['decode_s_per_tile'] * 1000:.2f} ms/tile" if "decode_s_per_tile" in limit else ""))
        entry = {"description": desc, "limit": limit, "peers": {}}
        reference = None
        for peer in order:
            if "@backlog" in wname and peer not in ("rasteret", "gdal-threads"):
                continue
            pspec = dict(spec)
            if peer == "rasterio-naive":
                pspec["reps"] = cfg["naive_reps"]
            load = os.getloadavg()[0]
            serving = servers.get(pspec["endpoint"])
            server_cpu0 = serving.cpu_s() if serving else 0.0
            with account:
                doc = run_worker(peer, pspec, workdir, timeout=1800)
            # the server's CPU while this peer ran, per repetition (warm-up included): it shares the cores
            server_cpu = ((serving.cpu_s() - server_cpu0) / (pspec["warmup"] + pspec["reps"])) if serving else None
            results["max_load"] = max(results.get("max_load", 0.0), load)
            if not doc.get("ok"):
                status = "SKIP" if "not supported" in doc.get("error", "") else "ERROR"
                entry["peers"][peer] = {"status": status, "note": doc.get("error", "")[:300]}
                log(f"   {peer:16s} {status} {doc.get('error', '')[:200]}")
                continue
            s = summarise(doc)
            if reference is None:
                reference, ref_peer = doc["outputs"], peer
                mismatch = None
            else:
                mismatch = compare(doc["outputs"], reference)
            if mismatch:
                entry["peers"][peer] = {"status": "FAIL", "note": mismatch, "requests": s["requests"], "bytes": s["bytes"]}
                log(f"   {peer:16s} FAIL  {mismatch}")
                continue
            s["status"] = "ok"
            s["load_before"] = load
            s["server_cpu_s"] = server_cpu
            s["reference"] = ref_peer
            s["x_limit"] = s["wall_s"] / limit["limit_s"] if limit["limit_s"] > 0 else None
            entry["peers"][peer] = s
            log(f"   {peer:16s} {s['wall_s']:8.3f} s  cpu {s['cpu_s']:7.2f} s  {s['requests']:6d} req "
                f"{s['bytes'] / 1e6:8.1f} MB  rss {s['peak_rss_mb']:6.0f} MB  ({s['x_limit']:.1f}x limit)")
        ours = entry["peers"].get("rasteret", {})
        for peer, s in entry["peers"].items():
            if s.get("status") == "ok" and ours.get("status") == "ok":
                s["vs_rasteret"] = s["wall_s"] / ours["wall_s"]
        if wname.startswith(("aoi", "scene-")):
            entry["intersecting_tiles"] = limit["requests"]
        results["workloads"][wname] = entry

    if not args.no_scaling:
        log("\n-- scaling (AOI time series): time and memory vs K (AOIs) and T (dates)")
        for peer in [p for p in cfg["scale_peers"] if p in run_peers]:
            for axis, sizes in (("K", cfg["scale_K"]), ("T", cfg["scale_T"])):
                points = []
                for n in sizes:
                    k, t = (n, cfg["T"]) if axis == "K" else (cfg["K"], n)
                    spec = dict(aoi_spec(k, t, f"scale-{axis}{n}"), reps=cfg["scale_reps"])
                    results["max_load"] = max(results.get("max_load", 0.0), os.getloadavg()[0])
                    with account:
                        doc = run_worker(peer, spec, workdir, timeout=1800)
                    if not doc.get("ok"):
                        log(f"   {peer} {axis}={n}: ERROR {doc.get('error', '')[:200]}")
                        continue
                    s = summarise(doc)
                    points.append({"n": n, "K": k, "T": t, "wall_s": s["wall_s"], "peak_rss_mb": s["peak_rss_mb"],
                                   "rss_growth_mb": s["rss_growth_mb"], "output_mb": s["output_mb"],
                                   "requests": s["requests"], "scenes_scanned": t * len(BANDS)})
                    log(f"   {peer:14s} {axis}={n:3d} (K={k}, T={t}): {s['wall_s']:.3f} s, peak RSS "
                        f"{s['peak_rss_mb']:.0f} MB (+{s['rss_growth_mb']:.0f} MB during the read), "
                        f"output {s['output_mb']:.1f} MB")
                results["scaling"].setdefault(peer, {})[axis] = points

    results["targets"] = targets(results)
    results["elapsed_s"] = time.perf_counter() - started
    results["other_cpu"] = account.as_dict(cores)
    from bench.report import write_outputs

    paths = write_outputs(results, RESULTS)
    log("")
    log(paths["table"])
    log(f"\nwrote {', '.join(str(p.relative_to(REPO)) for k, p in paths.items() if k != 'table')} "
        f"in {results['elapsed_s']:.0f} s")
    return 0


def targets(results: dict) -> list[dict]:
    """The targets, PASS/MISS (printed, never asserted)."""
    out = []
    w = results["workloads"]

    def add(name: str, ok: bool | None, detail: str) -> None:
        out.append({"target": name, "status": "n/a" if ok is None else ("PASS" if ok else "MISS"), "detail": detail})

    def ours(wname: str) -> dict:
        s = w.get(wname, {}).get("peers", {}).get("rasteret", {})
        return s if s.get("status") == "ok" else {}

    for wname in w:
        mine = ours(wname)
        if mine and wname != "harvest" and "@" not in wname:
            tiles = w[wname]["intersecting_tiles"]
            hdr = mine["client"].get("header_requests", 0)
            add(f"{wname}: read-time requests <= intersecting tiles, 0 header requests",
                mine["requests"] <= tiles and hdr == 0,
                f"{mine['requests']} requests for {tiles} intersecting tiles, {hdr} header requests")
    for wname in [n for n in w if n.startswith("aoi") and "@" not in n]:
        mine = ours(wname)
        if not mine:
            add(f"{wname}: measured", None, "rasteret did not run")
            continue
        x = mine["x_limit"]
        add(f"{wname} within 1.2x of the measured limit", x <= 1.2, f"{x:.2f}x of {w[wname]['limit']['limit_s']:.3f} s")
        gdal = w[wname]["peers"].get("gdal-threads", {})
        if gdal.get("status") == "ok":
            speed = gdal["wall_s"] / mine["wall_s"]
            add(f"{wname} >= 3x faster than tuned GDAL", speed >= 3.0,
                f"{speed:.2f}x ({gdal['wall_s']:.3f} s vs {mine['wall_s']:.3f} s)")
        small = ours(f"{wname}@backlog{SMALL_BACKLOG}")
        if small:
            ratio = small["wall_s"] / mine["wall_s"]
            add(f"{wname}: backlog-{SMALL_BACKLOG} server no more than 10 % slower", ratio <= 1.10,
                f"{ratio:.2f}x ({small['wall_s']:.3f} s vs {mine['wall_s']:.3f} s)")
    for wname in [n for n in w if n.startswith("scene-")]:
        mine = ours(wname)
        if mine:
            add(f"{wname} within 1.3x of the measured limit", mine["x_limit"] <= 1.3,
                f"{mine['x_limit']:.2f}x of {w[wname]['limit']['limit_s']:.3f} s")
    mine, peer = ours("harvest"), w.get("harvest", {}).get("peers", {}).get("async-geotiff", {})
    if mine and peer.get("status") == "ok":
        add("harvest at least as fast as async-geotiff", mine["wall_s"] <= peer["wall_s"],
            f"{mine['wall_s']:.3f} s vs {peer['wall_s']:.3f} s")
    series = results.get("scaling", {}).get("rasteret", {}).get("T", [])
    if len(series) >= 2:
        # T multiplies the scenes scanned (and the output). Memory beyond the output itself should
        # not follow the number of scenes scanned: its growth must be clearly sub-linear in it.
        lo, hi = series[0], series[-1]
        over = lambda p: max(1.0, p["rss_growth_mb"] - p["output_mb"])  # noqa: E731
        scanned = hi["scenes_scanned"] / lo["scenes_scanned"]
        grew = over(hi) / over(lo)
        add("peak memory grows with output size, not with scenes scanned", grew <= scanned / 2,
            f"RSS growth beyond the output: {over(lo):.0f} MB at {lo['scenes_scanned']} scene-bands -> "
            f"{over(hi):.0f} MB at {hi['scenes_scanned']} ({grew:.1f}x for {scanned:.0f}x scenes scanned; "
            f"PASS needs <= {scanned / 2:.1f}x); output {lo['output_mb']:.1f} -> {hi['output_mb']:.1f} MB")
    return out


if __name__ == "__main__":
    sys.exit(main())
