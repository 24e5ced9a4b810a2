"""The benchmark's object store: the project's ObjectStoreServer plus stats routes and aliasing.

Run in its own process (``python -m bench.server --root DIR ...``) so it shares neither the
GIL nor a core with the clients it serves. It adds:

- ``GET /__stats``: request, range-request and byte counters since the last reset (JSON);
- ``POST``/``GET /__reset``: zero the counters;
- aliasing: every key ending in ``/<name>`` of a bucket is served from the file ``<name>`` at
  the bucket's root, so ``/s2/rep3/S2B_29RKH_20240110_0_L2A/B04.tif`` and every other date
  or repetition reads the same B04 file under its own URL (no client cache can hit).

The latency model is the project's: each request waits a first-byte latency drawn uniformly
from ``[--latency-min, --latency-max]`` seconds, then streams at ``--bandwidth`` bytes/s per
connection.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from rasteret_core.testing.object_store import ObjectStoreServer


class BenchServer(ObjectStoreServer):
    def _resolve(self, bucket: str, key: str) -> Path | None:
        base = self.bucket_dir(bucket)
        return None if base is None else base / Path(key).name  # every date/rep aliases one file

    async def _stats(self, request: web.Request) -> web.Response:
        with self._lock:
            s = self.stats
            body = {"requests": s.requests, "range_requests": s.range_requests, "bytes": s.bytes_sent,
                    "peak_connections": s.peak_connections, "open_connections": s.open_connections,
                    "not_ok": sum(1 for r in s.log if r.status >= 300)}
        return web.json_response(body)

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_stats()
        return web.json_response({"ok": True})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/__stats", self._stats)
        app.router.add_route("GET", "/__reset", self._reset)
        app.router.add_route("POST", "/__reset", self._reset)
        super().add_routes(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", action="append", required=True, help="NAME=DIR (repeatable)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-min", type=float, default=0.02)
    parser.add_argument("--latency-max", type=float, default=0.08)
    parser.add_argument("--bandwidth", type=float, default=100e6, help="bytes/s per connection (0: unlimited)")
    parser.add_argument("--backlog", type=int, default=1024, help="listen backlog (accept queue length)")
    args = parser.parse_args(argv)
    buckets = dict(b.split("=", 1) for b in args.bucket)
    latency = (args.latency_min, args.latency_max) if args.latency_max > args.latency_min else args.latency_min
    server = BenchServer(buckets=buckets, port=args.port, latency=latency, bandwidth=args.bandwidth or None,
                         backlog=args.backlog)
    server.serve_forever('{{"endpoint": "{endpoint}"}}')


if __name__ == "__main__":
    main()
