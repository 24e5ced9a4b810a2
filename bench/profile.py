"""Where a benchmark worker spends its CPU: ``python -m bench.profile RUN_DIR TAG [--reps N]``.

Re-runs one saved worker spec (``RUN_DIR/TAG.spec.json``, written by ``bench.run``) against a
fresh benchmark object store with the same latency model, under ``py-spy record`` (sampling
Python frames, idle threads left out), and prints the CPU samples grouped by what
the code was doing: decoding tiles, moving bytes in aiohttp/asyncio, header parsing, planning,
and so on. ``--reps`` raises the number of timed repetitions so the samples are many.

The groups are decided by the innermost frame of the project or library that a sample is in
(see ``GROUPS``); the ten hottest leaf functions are printed too.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data import REPO, data_dir

# (group, substrings of a frame "function (file)"): the first group whose pattern occurs in a
# sample's stack, searched from the innermost frame outwards, takes the sample
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("decode: decompress (libdeflate)", ("_decompress (",)),
    ("decode: predictor, placement", ("codecs.py",)),
    ("header parse", ("tiff.py", "header.py", "geokeys.py")),
    ("http: aiohttp/asyncio", ("aiohttp", "asyncio", "selectors", "_http_parser", "streams.py", "ssl")),
    ("fetch: ranges/retries", ("fetch.py",)),
    ("read: windows/plan", ("windows.py", "aoi.py", "geometry.py", "reader.py")),
    ("collection: parquet/arrow", ("pyarrow", "store.py", "scene.py", "schema.py")),
    ("harvest/validate/radiometry", ("harvest.py", "validate.py", "radiometry.py", "sources.py")),
    ("numpy", ("numpy",)),
    ("bench harness", ("bench/common.py", "bench/worker.py")),
]


# leaf frames of a thread that is waiting, not computing (py-spy's idle filter misses some)
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "Condition.wait (", "Event.wait (", "EpollSelector.select (",
               "_wait_for_tstate_lock (", "RssSampler._run (")


UNTIMED = {"idle waits (not CPU)", "imports (not timed)", "bench checksums (not timed)"}


def group_of(stack: list[str]) -> str:
    if stack[-1].startswith(IDLE_LEAVES):
        return "idle waits (not CPU)"
    if any("_find_and_load" in f for f in stack):
        return "imports (not timed)"
    if any(f.startswith(("finish (", "checksum (")) and "common.py" in f for f in stack):
        return "bench checksums (not timed)"
    for frame in reversed(stack):
        for name, patterns in GROUPS:
            if any(p in frame for p in patterns):
                return name
    return "other"


def start_server(bucket_dir: Path, latency: float, bandwidth: float, backlog: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "bench.server", "--bucket", f"sentinel-cogs={bucket_dir}", "--latency-min",
           str(latency), "--latency-max", str(latency), "--bandwidth", str(bandwidth), "--backlog", str(backlog)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())["endpoint"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("tag", help="spec name without .spec.json, e.g. aoi-aoi-4x24-rasteret")
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.04)
    parser.add_argument("--bandwidth", type=float, default=100e6)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--bucket-dir", type=Path, help="default: the spec's data folder")
    parser.add_argument("--size", type=int, help="the data's scene size (default: the spec's, else 5490)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a reader option for the rasteret peer (repeatable), e.g. connect_interval=0.001")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spec = json.loads((args.run_dir / f"{args.tag}.spec.json").read_text())
    bucket_dir = args.bucket_dir or data_dir(args.size or spec.get("size", 5490)) / "bucket"
    server, endpoint = start_server(bucket_dir, args.latency, args.bandwidth, args.backlog)
    try:
        # the saved spec names the old server's endpoint (also inside its STAC items' hrefs)
        spec = json.loads(json.dumps(spec).replace(spec["endpoint"], endpoint))
        spec["reps"] = args.reps
        if args.option:
            spec["reader_options"] = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
        spec["collections"] = (spec["collections"] * (args.reps + spec["warmup"]))[: args.reps + spec["warmup"]]
        with tempfile.TemporaryDirectory() as tmp:
            spec_path, out_path, raw = Path(tmp, "spec.json"), Path(tmp, "out.json"), Path(tmp, "profile.txt")
            spec_path.write_text(json.dumps(spec))
            subprocess.run([py_spy, "record", "--format", "raw", "--rate", str(args.rate), "-o", str(raw),
                            "--", sys.executable, "-m", "bench.worker", str(spec_path), str(out_path)],
                           cwd=REPO, check=True, capture_output=True)
            doc = json.loads(out_path.read_text())
            lines = raw.read_text().splitlines()
    finally:
        server.terminate()
    if not doc.get("ok"):
        print("worker failed:", doc.get("error"))
        return 1
    timed = [r for r in doc["runs"] if not r["warmup"]]
    wall = sorted(r["wall_s"] for r in timed)[len(timed) // 2]
    cpu = sorted(r["cpu_s"] for r in timed)[len(timed) // 2]
    groups: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in lines:
        stack_s, _, count_s = line.rpartition(" ")
        if not stack_s:
            continue
        count = int(count_s)
        stack = stack_s.split(";")
        total += count
        group = group_of(stack)
        groups[group] += count
        if group not in UNTIMED:
            leaves[stack[-1]] += count
    print(f"{args.tag}: median wall {wall:.3f} s, CPU {cpu:.3f} s over {len(timed)} timed runs "
          f"(latency {args.latency * 1e3:.0f} ms, backlog {args.backlog}); {total} samples incl. warm-up and imports")
    # py-spy counts a thread as busy while it is runnable, also when it waits for a core or the
    # GIL, so sample counts overstate CPU seconds on a loaded machine: the shares are spread
    # over the CPU the timed runs really used (getrusage)
    timed_samples = sum(c for g, c in groups.items() if g not in UNTIMED)
    print(f"\nshares of the busy samples of the timed code; CPU s = share x the runs' median CPU ({cpu:.3f} s)")
    print("\n| group | share | CPU s per run |\n|---|---:|---:|")
    for name, count in groups.most_common():
        if name not in UNTIMED:
            print(f"| {name} | {count / timed_samples:.1%} | {count / timed_samples * cpu:.3f} |")
    print("\n| hottest leaf frames of the timed code | share |\n|---|---:|")
    for name, count in leaves.most_common(10):
        print(f"| `{name[:90]}` | {count / timed_samples:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
