"""A local Azure-Blob-style server with a Planetary-Computer-style SAS token endpoint.

Serves blobs path-style (``/{account}/{container}/{blob}``, as the Azure emulators do) from
local folders, with Blob Storage's rules: a SAS query is required and checked (``sv``,
``se``, ``sr``, ``sp`` and an HMAC ``sig`` the token endpoint made), an expired or revoked
token gets 403 ``AuthenticationFailed`` "Signature not valid in the specified time frame",
``Range`` / ``x-ms-range`` get 206 with ``Content-Range``, a start past the end 416
``InvalidRange``, a failed ``If-Match`` 412 ``ConditionNotMet`` (blobs carry an ``ETag``).
``/api/sas/v1/token/{account}/{container}`` answers
``{"msft:expiry": ..., "token": ...}`` like Planetary Computer's endpoint.

``expire_after(n)`` makes every token issued so far expire after ``n`` more blob requests,
which is how a test expires a token in the middle of a read without waiting for a clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class BlobRecord:
    path: str
    range: str | None
    status: int
    bytes_sent: int
    api_version: str | None
    signed: bool


@dataclass
class BlobStats:
    requests: int = 0
    bytes_sent: int = 0
    token_requests: int = 0
    expired_answers: int = 0
    log: list[BlobRecord] = field(default_factory=list)


class AzureBlobServer:
    """Blob containers from local folders plus a token endpoint, on 127.0.0.1 (port 0).

    ``containers`` maps ``(account, container)`` to a folder. ``token_lifetime`` is the
    validity of issued tokens in seconds (by the server's clock).
    """

    def __init__(self, containers: dict[tuple[str, str], str | os.PathLike[str]], *, token_lifetime: float = 3600.0) -> None:
        self.containers = {k: Path(v) for k, v in containers.items()}
        self.token_lifetime = token_lifetime
        self.stats = BlobStats()
        self.port = 0
        self._secret = os.urandom(16)
        self._revoked: set[str] = set()
        self._issued: list[str] = []
        self._expire_countdown: int | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.endpoint_url}/api/sas/v1/token"

    def __enter__(self) -> "AzureBlobServer":
        self._thread = threading.Thread(target=self._run, name="azure-blob", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the blob server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/api/sas/v1/token/{account}/{container}", self._token)
        app.router.add_get("/{account}/{container}/{blob:.+}", self._blob)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    # --- controls --------------------------------------------------------------------------
    def expire_after(self, requests: int) -> None:
        """Every token issued so far expires after ``requests`` more blob requests."""
        with self._lock:
            self._expire_countdown = requests

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = BlobStats()

    # --- handlers --------------------------------------------------------------------------
    def _sign(self, account: str, container: str, expiry: str, oid: str) -> str:
        message = f"{account}/{container}/{expiry}/{oid}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def _token(self, request: web.Request) -> web.Response:
        account, container = request.match_info["account"], request.match_info["container"]
        if (account, container) not in self.containers:
            return web.json_response({"detail": "unknown storage account or container"}, status=404)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        expiry = (now + dt.timedelta(seconds=self.token_lifetime)).strftime("%Y-%m-%dT%H:%M:%SZ")
        oid = os.urandom(8).hex()  # every token distinct, as real ones are (signing key ids differ)
        sig = self._sign(account, container, expiry, oid)
        token = urlencode({"st": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "se": expiry, "sp": "rl", "sv": "2021-06-08",
                           "sr": "c", "skoid": oid, "sig": sig})
        with self._lock:
            self.stats.token_requests += 1
            self._issued.append(sig)
        return web.json_response({"msft:expiry": expiry, "token": token})

    def _error(self, request: web.Request, status: int, code: str, message: str, signed: bool) -> web.Response:
        self._record(request, status, 0, signed)
        body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
        return web.Response(status=status, text=body, content_type="application/xml",
                            headers={"x-ms-error-code": code})

    def _record(self, request: web.Request, status: int, sent: int, signed: bool) -> None:
        with self._lock:
            self.stats.requests += 1
            self.stats.bytes_sent += sent
            rng = request.headers.get("x-ms-range") or request.headers.get("Range")
            self.stats.log.append(BlobRecord(request.path, rng, status, sent, request.headers.get("x-ms-version"), signed))

    def _check_sas(self, request: web.Request, account: str, container: str) -> str | None:
        """None when the SAS query is valid now, else the reason."""
        q = request.query
        if not all(k in q for k in ("sv", "se", "sr", "sp", "skoid", "sig")):
            return "missing"
        if q["sr"] != "c" or "r" not in q["sp"]:
            return "permission"
        if not hmac.compare_digest(q["sig"], self._sign(account, container, q["se"], q["skoid"])):
            return "signature"
        with self._lock:
            if self._expire_countdown is not None:
                if self._expire_countdown <= 0:
                    self._revoked.update(self._issued)
                    self._expire_countdown = None
                else:
                    self._expire_countdown -= 1
            revoked = q["sig"] in self._revoked
        expiry = dt.datetime.strptime(q["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        if revoked or expiry <= dt.datetime.now(dt.timezone.utc):
            return "expired"
        return None

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        account, container, blob = (request.match_info[k] for k in ("account", "container", "blob"))
        signed = "sig" in request.query
        folder = self.containers.get((account, container))
        if folder is None:
            return self._error(request, 404, "ContainerNotFound", "The specified container does not exist.", signed)
        problem = self._check_sas(request, account, container)
        if problem == "missing":
            return self._error(request, 404, "ResourceNotFound", "The specified resource does not exist.", signed)
        if problem == "expired":
            with self._lock:
                self.stats.expired_answers += 1
            return self._error(request, 403, "AuthenticationFailed",
                               "Server failed to authenticate the request. Make sure the value of Authorization header "
                               "is formed correctly including the signature. AuthenticationErrorDetail: Signed expiry "
                               "time has passed: Signature not valid in the specified time frame", signed)
        if problem is not None:
            return self._error(request, 403, "AuthenticationFailed",
                               f"Server failed to authenticate the request ({problem}).", signed)
        path = (folder / blob).resolve()
        if ".." in blob.split("/") or not path.is_file():
            return self._error(request, 404, "BlobNotFound", "The specified blob does not exist.", signed)
        stat = path.stat()
        size = stat.st_size
        # Blob Storage's ETag style ("0x" + hex), changed by any replacement of the blob
        etag = '"0x' + hashlib.md5(f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_ctime_ns}-{size}".encode()).hexdigest()[:15].upper() + '"'
        wanted = request.headers.get("If-Match")
        if wanted is not None and etag not in [t.strip() for t in wanted.split(",")] and wanted.strip() != "*":
            resp = self._error(request, 412, "ConditionNotMet", "The condition specified using HTTP conditional "
                                                                 "header(s) is not met.", signed)
            resp.headers["ETag"] = etag
            return resp
        rng = request.headers.get("x-ms-range") or request.headers.get("Range")  # x-ms-range wins, as in Azure
        headers = {"x-ms-version": request.headers.get("x-ms-version", "2009-09-19"), "Accept-Ranges": "bytes",
                   "x-ms-blob-type": "BlockBlob", "ETag": etag,
                   "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
        if rng is None:
            data = path.read_bytes()
            self._record(request, 200, len(data), signed)
            return web.Response(body=data, headers=headers, content_type="application/octet-stream")
        match = _RANGE.match(rng)
        if not match:
            return self._error(request, 400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in "
                                                                  "the correct format.", signed)
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        if start >= size:
            resp = self._error(request, 416, "InvalidRange", "The range specified is invalid for the current size "
                                                              "of the resource.", signed)
            resp.headers["Content-Range"] = f"bytes */{size}"
            return resp
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start + 1)
        self._record(request, 206, len(data), signed)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return web.Response(status=206, body=data, headers=headers, content_type="application/octet-stream")
