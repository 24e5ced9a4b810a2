"""A range server with Python's default accept queue (listen backlog 5), in its own process.

``python -m tests.servers.small_backlog DIR LATENCY`` serves ``GET /<anything>/<name>`` from
``DIR/<name>`` with single-range 206 answers after ``LATENCY`` seconds, HTTP/1.1 keep-alive,
one thread per connection, and prints ``{"port": N}`` once listening. ``GET /__stats`` answers
``{"connections": accepted connections, "requests": range requests}``.

``request_queue_size`` must be a class attribute: ``socketserver`` passes it to ``listen()``
while the server is built, so setting it on an instance afterwards changes nothing.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


class SmallBacklogServer(ThreadingHTTPServer):
    request_queue_size = 5
    daemon_threads = True
    connections = 0
    requests = 0
    lock = threading.Lock()

    def get_request(self):
        conn = super().get_request()
        with self.lock:
            SmallBacklogServer.connections += 1
        return conn


def handler(root: Path, latency: float):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/__stats":
                body = json.dumps({"connections": SmallBacklogServer.connections,
                                   "requests": SmallBacklogServer.requests}).encode()
                return self._send(200, body, {"Content-Type": "application/json"})
            path = root / self.path.rsplit("/", 1)[-1]
            match = RANGE.match(self.headers.get("Range", ""))
            if not path.is_file() or match is None:
                return self._send(404 if match else 400, b"")
            with SmallBacklogServer.lock:
                SmallBacklogServer.requests += 1
            time.sleep(latency)  # the modelled first-byte latency of an object store
            size = path.stat().st_size
            start, end = int(match.group(1)), min(int(match.group(2)), size - 1)
            with open(path, "rb") as fh:
                fh.seek(start)
                body = fh.read(end - start + 1)
            self._send(206, body, {"Content-Range": f"bytes {start}-{end}/{size}"})

        def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    root, latency = Path(sys.argv[1]), float(sys.argv[2])
    server = SmallBacklogServer(("127.0.0.1", 0), handler(root, latency))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
