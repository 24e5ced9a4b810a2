"""Helpers shared by every benchmark worker (standard library + numpy only).

Workers run in fresh processes, possibly in another virtualenv (Rasteret 0.4.1 needs
Python 3.12), so this module must not import the project.

A worker runs one (peer, workload): ``warmup`` untimed repetitions, then ``reps`` timed ones.
Repetition ``i`` reads every object under the URL prefix ``rep<i>/`` (the server maps all of
them to the same files), so no URL-keyed cache of the client (GDAL's /vsicurl/ and block
caches, an HTTP cache) can serve a repetition from an earlier one. For each repetition it
records wall time, CPU time (user + system, all threads, from getrusage), the peak resident
memory sampled every 5 ms, and the server's request and byte counters.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import threading
import time
import traceback
import urllib.request
from typing import Any, Callable

import numpy as np

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


class RssSampler:
    """Peak RSS while running (sampled every ``interval`` s)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def server_reset(endpoint: str) -> None:
    _get(f"{endpoint}/__reset")


def server_stats(endpoint: str) -> dict:
    return _get(f"{endpoint}/__stats")


def checksum(array: np.ndarray) -> str:
    """Shape, dtype and pixel bytes of one array."""
    a = np.ascontiguousarray(array)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def header_summary(width: int, height: int, tile_w: int, tile_h: int, transform: tuple, nodata: Any,
                   n_overviews: int, dtype: str) -> str:
    """What every peer's header read must agree on."""
    t = ",".join(f"{float(v):.4f}" for v in transform[:6])
    nd = None if nodata is None else float(nodata)
    return f"{width}x{height} tile {tile_w}x{tile_h} transform {t} nodata {nd} overviews {n_overviews} {np.dtype(dtype).name}"


def url(spec: dict, prefix: str, key: str) -> str:
    return f"{spec['endpoint']}/{spec['bucket']}/{prefix}/{key}"


def rep_prefix(i: int) -> str:
    return f"rep{i}"


def outside_masks(spec: dict) -> dict[str, np.ndarray]:
    """Per AOI, True where the pixel centre is outside the polygon (``rasterio.mask`` semantics)."""
    import base64

    out = {}
    for aoi_id, m in spec.get("aoi_masks", {}).items():
        h, w = m["shape"]
        bits = np.frombuffer(base64.b64decode(m["bits"]), np.uint8)
        out[aoi_id] = np.unpackbits(bits)[: h * w].reshape(h, w).astype(bool)
    return out


def finish(outputs: dict, masks: dict[str, np.ndarray] | None = None) -> tuple[int, dict]:
    """Pixel count and per-output checksums (headers are compared as summaries).

    AOI outputs (keys ``aoi|scene|band``) are compared inside the AOI polygon: pixels whose
    centre is outside it are set to 0 first, since some peers fill them and others do not.
    """
    masks = masks or {}
    pixels, sums = 0, {}
    for k, v in outputs.items():
        if not isinstance(v, np.ndarray):
            sums[k] = v
            continue
        pixels += int(v.size)
        mask = masks.get(k.split("|", 1)[0])
        if mask is not None and mask.shape == v.shape[-2:]:
            v = v.copy()
            v[..., mask] = 0
        sums[k] = checksum(v)
    return pixels, sums


def run_worker(spec: dict, workload: Callable[[dict, int], dict]) -> dict:
    """Run ``workload(spec, rep_index)`` warm-up + timed times; returns the result document.

    ``workload`` returns ``{"outputs": {key: checksum-or-summary}, "pixels": n, "stats": {...}}``.
    """
    endpoint = spec["endpoint"]
    runs = []
    outputs = None
    base_rss = rss_bytes()
    masks = outside_masks(spec)
    total = spec["warmup"] + spec["reps"]
    for i in range(total):
        server_reset(endpoint)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        start_rss = rss_bytes()
        with RssSampler() as sampler:
            t0 = time.perf_counter()
            result = workload(spec, i)
            wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        pixels, outputs = finish(result["outputs"], masks)  # checksums are not timed
        server = server_stats(endpoint)
        run = {
            "warmup": i < spec["warmup"],
            "wall_s": wall,
            "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "peak_rss_mb": sampler.peak / 1e6,
            "rss_growth_mb": (sampler.peak - start_rss) / 1e6,
            "requests": server["requests"],
            "bytes": server["bytes"],
            "not_ok": server["not_ok"],
            "peak_connections": server["peak_connections"],
            "pixels": pixels,
            "client": result.get("stats", {}),
        }
        runs.append(run)
        del result
    return {
        "runs": runs,
        "outputs": outputs,
        "base_rss_mb": base_rss / 1e6,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


def main(workloads: dict[str, Callable[[dict, int], dict]], prepare: Callable[[dict], None] | None = None) -> None:
    """``worker.py SPEC.json OUT.json``: run the spec's workload, write the result (or the error)."""
    spec_path, out_path = sys.argv[1], sys.argv[2]
    spec = json.loads(open(spec_path).read())
    try:
        if prepare is not None:
            prepare(spec)
        doc = run_worker(spec, workloads[spec["workload"]])
        doc["ok"] = True
    except Exception as exc:  # reported to the orchestrator, which prints it
        doc = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    with open(out_path, "w") as fh:
        json.dump(doc, fh)
