"""A local S3-compatible object store on 127.0.0.1 for demos, tests and benchmarks.

Serves files path-style (``/<bucket>/<key>``) with S3's range rules: a single range gets
206 with ``Content-Range``, a start past the end 416, a multi-range request the whole
object with 200. Requester-pays buckets answer 403 without ``x-amz-request-payer``.
Conditional reads follow S3: a failed ``If-Match`` (or ``If-Unmodified-Since``) gets 412
``PreconditionFailed``, a matching ``If-None-Match`` (or ``If-Modified-Since``) 304; the
ETag changes whenever a file is replaced.
A latency model (first-byte delay, per-connection bandwidth) makes timings realistic, fault
rules inject throttling, resets, truncation, stalls and wrong ranges, and counters record
every request so tests can assert request and byte counts. moto is a fuller S3 API, but it
reads the whole object on every GET and closes every connection, so it cannot be timed.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import hashlib
import os
import random
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 256 * 1024


@dataclass
class FaultRule:
    """A fault served instead of (or in the middle of) a normal answer, ``times`` times.

    ``kind``: ``status`` (answer ``status`` with an S3 XML error and optional Retry-After),
    ``reset`` (send headers and ``after_bytes`` of the body, then drop the connection),
    ``truncate`` (announce the full length, send less, close), ``stall`` (wait ``seconds``
    before answering normally), ``wrong_range`` (206 with bytes shifted by ``shift``),
    ``redirect`` (302 to ``location``); hostile answers: ``overlong`` (206 with the range
    asked plus ``after_bytes`` more bytes, announced in Content-Length unless ``chunked``),
    ``unknown_total`` (``Content-Range: bytes a-b/*``), ``ignore_range`` (200 with the whole
    object, as a server without range support answers).
    """

    kind: str
    path_glob: str = "*"
    times: int = 1
    status: int = 503
    retry_after: float | None = None
    after_bytes: int = 0
    seconds: float = 0.0
    shift: int = 1
    location: str = ""
    chunked: bool = False

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.path_glob)


@dataclass
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int
    signed: bool
    requester_pays: bool
    fault: str | None = None


@dataclass
class StoreStats:
    requests: int = 0
    bytes_sent: int = 0
    range_requests: int = 0
    faults_fired: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    log: list[RequestRecord] = field(default_factory=list)


class ObjectStoreServer:
    """An aiohttp object server over local folders, one folder per bucket.

    ``buckets`` maps bucket names to directories; alternatively every subfolder of ``root``
    is a bucket. Start it in a background thread (``start()``/``stop()`` or ``with``); the
    address is ``endpoint_url`` (``http://127.0.0.1:<port>``), suitable as an S3
    ``endpoint_url`` for path-style ``s3://bucket/key`` reads.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        buckets: dict[str, str | os.PathLike[str]] | None = None,
        requester_pays: set[str] | frozenset[str] = frozenset(),
        require_signature: set[str] | frozenset[str] = frozenset(),
        latency: float | tuple[float, float] = 0.0,
        bandwidth: float | None = None,
        port: int = 0,
        seed: int = 0,
        backlog: int = 1024,
    ) -> None:
        self.root = Path(root) if root is not None else None
        self.buckets = {k: Path(v) for k, v in (buckets or {}).items()}
        self.requester_pays = set(requester_pays)
        self.require_signature = set(require_signature)
        self.latency = latency
        self.bandwidth = bandwidth
        self.port = port
        self.backlog = backlog  # listen() queue; 5 models Python's http.server and small proxies
        self.stats = StoreStats()
        self.faults: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str, key: str) -> str:
        """The plain HTTP URL of an object."""
        return f"{self.endpoint_url}/{bucket}/{key.lstrip('/')}"

    def start(self) -> "ObjectStoreServer":
        self._thread = threading.Thread(target=self._run, name="object-store", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = self._runner = None

    def __enter__(self) -> "ObjectStoreServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start_async())
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def start_async(self) -> None:
        """Start serving on the running loop (for callers that own an event loop)."""
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=self.backlog)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def add_routes(self, app: web.Application) -> None:
        """The object routes; subclasses may add their own first (checked in order)."""
        app.router.add_route("GET", "/{bucket}/{key:.+}", self._handle)
        app.router.add_route("HEAD", "/{bucket}/{key:.+}", self._handle)

    def serve_forever(self, announce: str) -> None:
        """Serve in this process's main thread until interrupted, printing ``announce``
        (formatted with ``endpoint``) once listening: the command-line entry points."""

        async def serve() -> None:
            await self.start_async()
            print(announce.format(endpoint=self.endpoint_url), flush=True)
            await asyncio.Event().wait()

        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            pass

    # --- test helpers --------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no request is being served (e.g. a stalled answer a client gave up on)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.stats.open_connections == 0, timeout)

    def reset_stats(self) -> None:
        with self._lock:
            open_now = self.stats.open_connections
            self.stats = StoreStats(open_connections=open_now, peak_connections=open_now)

    def requests_for(self, path_glob: str = "*") -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.stats.log if fnmatch.fnmatchcase(r.path, path_glob)]

    # --- serving -------------------------------------------------------------------------
    def _take_fault(self, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.faults:
                if rule.times > 0 and rule.matches(path):
                    rule.times -= 1
                    if rule.times == 0:
                        self.faults.remove(rule)
                    self.stats.faults_fired += 1
                    return rule
        return None

    def bucket_dir(self, bucket: str) -> Path | None:
        """The folder serving ``bucket`` (given in ``buckets`` or a subfolder of ``root``)."""
        base = self.buckets.get(bucket)
        if base is None and self.root is not None and (self.root / bucket).is_dir():
            base = self.root / bucket
        return base

    def _resolve(self, bucket: str, key: str) -> Path | None:
        base = self.bucket_dir(bucket)
        if base is None:
            return None
        target = (base / key).resolve()
        if not target.is_relative_to(base.resolve()):
            raise web.HTTPForbidden(text=_xml("AccessDenied", "path escapes the bucket"), content_type="application/xml")
        return target

    def _record(self, request: web.Request, status: int, sent: int, fault: str | None = None) -> None:
        with self._lock:
            self.stats.requests += 1
            self.stats.bytes_sent += sent
            if "Range" in request.headers:
                self.stats.range_requests += 1
            self.stats.log.append(
                RequestRecord(
                    request.method,
                    request.path,
                    request.headers.get("Range"),
                    status,
                    sent,
                    request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"),
                    request.headers.get("x-amz-request-payer", "").lower() == "requester",
                    fault,
                )
            )

    async def _delay(self) -> None:
        lat = self.latency
        delay = self._rng.uniform(*lat) if isinstance(lat, tuple) else lat
        if delay > 0:
            await asyncio.sleep(delay)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.stats.open_connections += 1
            self.stats.peak_connections = max(self.stats.peak_connections, self.stats.open_connections)
        try:
            return await self._serve(request)
        finally:
            with self._idle:
                self.stats.open_connections -= 1
                if self.stats.open_connections == 0:
                    self._idle.notify_all()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        if ".." in key.split("/"):
            self._record(request, 400, 0)
            return _error(400, "InvalidRequest", "path traversal refused")
        await self._delay()
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "status":
            self._record(request, fault.status, 0, "status")
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            code = "SlowDown" if fault.status == 503 else "InternalError"
            return _error(fault.status, code, "injected fault", headers)
        if fault is not None and fault.kind == "redirect":
            self._record(request, 302, 0, "redirect")
            return web.Response(status=302, headers={"Location": fault.location})
        if bucket in self.requester_pays and request.headers.get("x-amz-request-payer", "").lower() != "requester":
            self._record(request, 403, 0)
            return _error(403, "AccessDenied", "requester-pays bucket: x-amz-request-payer missing")
        if bucket in self.require_signature and not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            self._record(request, 403, 0)
            return _error(403, "AccessDenied", "signature required")
        path = self._resolve(bucket, key)
        if path is None:
            self._record(request, 404, 0)
            return _error(404, "NoSuchBucket", "the bucket does not exist")
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            self._record(request, 404, 0)
            return _error(404, "NoSuchKey", "the key does not exist")
        if not path.is_file():
            self._record(request, 404, 0)
            return _error(404, "NoSuchKey", "the key does not exist")

        stat = path.stat()
        etag = _etag(stat)
        refused = _precondition(request, etag, stat.st_mtime)
        if refused is not None:  # checked before Range, as S3 does
            self._record(request, refused, 0)
            if refused == 304:
                return web.Response(status=304, headers={"ETag": etag})
            condition = "If-Match" if "If-Match" in request.headers else "If-Unmodified-Since"
            return web.Response(status=412, content_type="application/xml", headers={"ETag": etag}, text=_xml(
                "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
            ).replace("</Message>", f"</Message><Condition>{condition}</Condition>"))
        start, end, status = 0, size, 200  # [start, end)
        range_header = request.headers.get("Range")
        if range_header and "," not in range_header:
            match = _RANGE.match(range_header.strip())
            if match and (match.group(1) or match.group(2)):
                first, last = match.group(1), match.group(2)
                if first == "":
                    start, end = max(0, size - int(last)), size
                else:
                    start = int(first)
                    end = min(size, int(last) + 1) if last else size
                    if start >= size:
                        self._record(request, 416, 0)
                        return _error(416, "InvalidRange", "the range is not satisfiable", {"Content-Range": f"bytes */{size}"})
                status = 206
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Type": "image/tiff" if path.suffix.lower() in (".tif", ".tiff") else "application/octet-stream",
            "ETag": etag,
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
        }
        if fault is not None and fault.kind == "ignore_range":
            start, end, status = 0, size, 200
        length = end - start
        extra = fault.after_bytes if fault is not None and fault.kind == "overlong" else 0
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            if fault is not None and fault.kind == "unknown_total":
                headers["Content-Range"] = f"bytes {start}-{end - 1}/*"
            if fault is not None and fault.kind == "wrong_range":
                start = min(start + fault.shift, max(0, size - length))
                headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        if fault is not None and fault.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = length + extra
        await response.prepare(request)
        if request.method == "HEAD":
            self._record(request, status, 0)
            return response
        limit = length
        if fault is not None and fault.kind in ("reset", "truncate"):
            limit = min(length, fault.after_bytes) if fault.kind == "reset" else max(0, length // 2)
        # recorded before the body goes out, so a client that has its bytes sees the record
        self._record(request, status, limit + extra, fault.kind if fault else None)
        try:
            await self._send(response, path, start, limit)
            for sent in range(0, extra, _CHUNK):  # an overlong answer: zeros after the range
                await response.write(bytes(min(_CHUNK, extra - sent)))
        except (ConnectionError, RuntimeError):
            return response  # the client hung up: what a careful client does
        if limit < length:
            # drop the connection without finishing the body: the client sees a short read
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def _send(self, response: web.StreamResponse, path: Path, start: int, length: int) -> int:
        loop = asyncio.get_running_loop()
        sent = 0
        with open(path, "rb") as fh:
            fd = fh.fileno()
            while sent < length:
                n = min(_CHUNK, length - sent)
                chunk = await loop.run_in_executor(None, os.pread, fd, n, start + sent) if n > 65536 else os.pread(fd, n, start + sent)
                if not chunk:
                    break
                await response.write(chunk)
                sent += len(chunk)
                if self.bandwidth:
                    await asyncio.sleep(len(chunk) / self.bandwidth)
        return sent


def _etag(stat: os.stat_result) -> str:
    """A strong ETag that changes when the object is replaced: a new file (inode) or new bytes
    (mtime, ctime, size), even within the filesystem's timestamp granularity when renamed over."""
    version = f"{stat.st_dev}-{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_ctime_ns}-{stat.st_size}"
    return '"' + hashlib.md5(version.encode()).hexdigest() + '"'


def _precondition(request: web.Request, etag: str, mtime: float) -> int | None:
    """S3's conditional GET/HEAD: 412 when If-Match fails (or, without If-Match,
    If-Unmodified-Since), 304 when If-None-Match matches (or, without it, If-Modified-Since
    holds); ``None`` to serve the object."""
    def matches(value: str) -> bool:
        tags = [t.strip() for t in value.split(",")]
        return "*" in tags or etag in tags or f"W/{etag}" in tags

    def since(name: str) -> float | None:
        try:
            return parsedate_to_datetime(request.headers[name]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):
            return None

    seconds = int(mtime)  # HTTP dates have whole seconds
    if "If-Match" in request.headers:
        if not matches(request.headers["If-Match"]):
            return 412
    elif (limit := since("If-Unmodified-Since")) is not None and seconds > limit:
        return 412
    if "If-None-Match" in request.headers:
        if matches(request.headers["If-None-Match"]):
            return 304
    elif (limit := since("If-Modified-Since")) is not None and seconds <= limit:
        return 304
    return None


def _xml(code: str, message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=_xml(code, message), content_type="application/xml", headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve folders as S3-style buckets on 127.0.0.1.")
    parser.add_argument("--root", required=True, help="folder whose subfolders are buckets")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--latency", type=float, default=0.0, help="first-byte latency in seconds")
    parser.add_argument("--requester-pays", action="append", default=[], help="bucket name (repeatable)")
    args = parser.parse_args(argv)
    server = ObjectStoreServer(args.root, port=args.port, latency=args.latency, requester_pays=set(args.requester_pays))
    server.serve_forever(f"serving {args.root} at {{endpoint}}")


if __name__ == "__main__":
    main()
