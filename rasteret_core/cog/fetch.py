"""Byte-range fetching: one aiohttp session, bounded concurrency, coalescing, retries.

Local files are read with ``os.pread`` in a thread, HTTP(S) and S3 with range GETs. S3
requests are unsigned unless signing is asked for (requester-pays buckets), in which case
they are SigV4-signed with the standard AWS credential chain, and only when the request goes
to the origin :func:`~rasteret_core.cog.urls.may_sign` allows. Nothing here logs or raises
headers, so signatures and keys never leave this module.

Every response is bounded: a body is never read past the bytes asked for (a longer answer is
refused as malformed, not retried), redirects are followed within one origin only and never
for a signed request, and one request never asks for more than the reader's limits allow.

A request for a header's tiles is conditional on the file's validator recorded with the
header (``If-Match`` / ``If-Unmodified-Since``; a local file's size and mtime): a 412 or
another version in the answer raises :class:`StaleHeaderError`, never retried, never decoded.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import inspect
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urljoin, urlsplit

import aiohttp

from rasteret_core import redact
from rasteret_core.cog import azure, urls
from rasteret_core.cog.options import ReaderOptions, ReadStats
from rasteret_core.cog.urls import Location
from rasteret_core.errors import (
    CredentialsError, FetchError, HttpStatusError, LimitError, LocationError, ShortReadError,
    StaleHeaderError, TruncatedHeaderError,
)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class _NoSigningDetails(logging.Filter):
    """botocore logs the canonical request (session token included), the string to sign and
    the signature at DEBUG; with debug logging on, they would land in logs. Drop them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(("CanonicalRequest", "StringToSign", "Signature"))


_SIGNING_LOG_FILTER = _NoSigningDetails()
_CONTENT_RANGE = re.compile(r"bytes\s+(\d{1,19})-(\d{1,19})/(\d{1,19}|\*)")


@dataclass(frozen=True)
class MergedRange:
    """A request covering several wanted ranges; ``parts`` are ``(start, end)`` pairs."""

    start: int
    end: int
    parts: tuple[tuple[int, int], ...]


def coalesce(ranges: list[tuple[int, int]], gap: int, max_bytes: int) -> list[MergedRange]:
    """Merge ``[start, end)`` ranges whose gap is at most ``gap`` bytes into fewer requests.

    Sorting by offset merges vertical neighbours too when their bytes are contiguous.
    Duplicates are kept once; a merged request never exceeds ``max_bytes`` unless a single
    range does.
    """
    merged: list[MergedRange] = []
    cur_start = cur_end = None
    parts: list[tuple[int, int]] = []
    for start, end in sorted(set(ranges)):
        if cur_start is not None and start - cur_end <= gap and max(end, cur_end) - cur_start <= max_bytes:
            cur_end = max(cur_end, end)
            parts.append((start, end))
            continue
        if cur_start is not None:
            merged.append(MergedRange(cur_start, cur_end, tuple(parts)))
        cur_start, cur_end, parts = start, end, [(start, end)]
    if cur_start is not None:
        merged.append(MergedRange(cur_start, cur_end, tuple(parts)))
    return merged


class ConnectPacer:
    """Lets ``burst`` new connections start at once, then one every ``interval`` seconds.

    A token bucket on the times connects actually start: tokens refill at one per
    ``interval`` up to ``burst``, so an event loop that was busy for a while releases at most
    ``burst`` connects together, never all that queued up. Waiters queue in order, each on
    its own future, and one timer hands out the tokens: a release or a token wakes one
    waiter, not all of them (with 64 waiters, waking all on every event cost a quarter of a
    harvest's CPU).
    """

    def __init__(self, burst: int, interval: float) -> None:
        self.burst = burst
        self.interval = interval
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._waiters: collections.deque[tuple[asyncio.Future, Callable[[], bool] | None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def delay(self, now: float) -> float:
        """Seconds until a token is available at ``now`` (0: take it now)."""
        if self.interval <= 0:
            return 0.0
        if self._stamp is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * self.interval

    async def wait(self, ready: Callable[[], bool] | None = None) -> bool:
        """Wait for a token; return False instead when ``ready()`` (e.g. a pooled connection
        was freed) turns true first. ``ready`` is asked when :meth:`notify` is called."""
        if self.interval <= 0:
            return True
        loop = asyncio.get_running_loop()
        if not self._waiters and self.delay(loop.time()) == 0:
            return True
        future = loop.create_future()
        self._waiters.append((future, ready))
        self._arm(loop)
        try:
            return await future
        finally:
            if not future.done():  # cancelled (a timeout): leave the queue
                future.cancel()
            try:
                self._waiters.remove((future, ready))
            except ValueError:
                pass

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Schedule the next token for the first waiter (one timer for the whole queue)."""
        if self._timer is None and self._waiters:
            self._timer = loop.call_at(loop.time() + self._next_token_in(loop.time()), self._grant, loop)

    def _next_token_in(self, now: float) -> float:
        tokens = self._tokens if self._stamp is None else min(float(self.burst),
                                                               self._tokens + (now - self._stamp) / self.interval)
        return max(0.0, (1.0 - tokens) * self.interval)

    def _grant(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        while self._waiters:
            future, _ready = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.delay(loop.time()) > 0:
                break
            self._waiters.popleft()
            future.set_result(True)
        self._arm(loop)

    def notify(self) -> None:
        """A connection went back to the pool: the first waiter that can use it stops waiting."""
        for future, ready in self._waiters:
            if not future.done() and ready is not None and ready():
                future.set_result(False)
                return


class _PacedConnector(aiohttp.TCPConnector):
    """aiohttp's pool (keep-alive reuse, ``limit``) with new connections opened at a bounded rate."""

    def __init__(self, *args, pacer: ConnectPacer, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pacer = pacer
        self.connections_opened = 0
        self.slowest_connect_s = 0.0

    async def _create_connection(self, req, traces, timeout):  # aiohttp's hook for a new connection
        key = req.connection_key
        # a connection freed while this request waits for its turn is taken instead
        while not await self._pacer.wait(ready=lambda: bool(self._conns.get(key))):
            idle = self._idle_connection(key)
            if idle is not None:
                return idle
        idle = self._idle_connection(key)
        if idle is not None:
            return idle
        self.connections_opened += 1
        started = asyncio.get_running_loop().time()
        try:
            return await super()._create_connection(req, traces, timeout)
        finally:
            # an overflowed accept queue shows here as a connect of 1 s or more (SYN retransmit)
            self.slowest_connect_s = max(self.slowest_connect_s, asyncio.get_running_loop().time() - started)


    def _release(self, *args, **kwargs):  # a connection goes back to the pool (or is closed)
        super()._release(*args, **kwargs)
        self._pacer.notify()

    def _idle_connection(self, key):
        """A live pooled connection for ``key`` (what aiohttp's own reuse takes), or None."""
        pool = getattr(self, "_conns", None)
        conns = pool.get(key) if isinstance(pool, dict) else None
        now = time.monotonic()
        while conns:
            proto, stamp = conns.popleft()
            if not conns:
                del pool[key]
            if proto.is_connected() and (self._keepalive_timeout is None or now - stamp <= self._keepalive_timeout):
                return proto
            proto.close()
        return None


class _Retry(Exception):
    """A transient failure (throttling, 5xx, reset, short body): worth another attempt."""

    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


_REDIRECTS = {301, 302, 303, 307, 308}


class RangeFetcher:
    """Fetches byte ranges from files, HTTP(S) and S3 with one shared connection pool.

    Use as an async context manager; the session is created on entry and closed on exit.
    """

    def __init__(self, options: ReaderOptions) -> None:
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._credentials = None

    async def __aenter__(self) -> "RangeFetcher":
        o = self.options
        connector = _PacedConnector(limit=o.max_concurrency, limit_per_host=0, ttl_dns_cache=300,
                                    pacer=ConnectPacer(o.connect_burst, o.connect_interval))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=o.timeout, sock_connect=o.connect_timeout),
            auto_decompress=False,
            headers={"User-Agent": "rasteret"},
        )
        self._semaphore = asyncio.Semaphore(o.max_concurrency)
        return self

    @property
    def connections(self) -> dict[str, float]:
        """New connections opened so far (``opened``) and the slowest connect (``slowest_connect_s``)."""
        conn = self._session.connector if self._session is not None else None
        if not isinstance(conn, _PacedConnector):
            return {"opened": 0, "slowest_connect_s": 0.0}
        return {"opened": conn.connections_opened, "slowest_connect_s": conn.slowest_connect_s}

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def max_request_bytes(self) -> int:
        """The largest range one request may ask for: a merged request, a tile or a header part."""
        o = self.options
        return max(o.max_coalesced_bytes, o.max_tile_bytes, o.max_header_bytes, o.prefetch)

    # --- public --------------------------------------------------------------------------
    async def fetch(
        self, loc: Location, start: int, end: int, stats: ReadStats, *, allow_short: bool = False,
        validator: str | None = None,
    ) -> tuple[bytes, int | None]:
        """Bytes ``[start, end)`` of ``loc`` and the file size when known.

        ``allow_short`` accepts fewer bytes when the file ends before ``end`` (header prefetch).
        ``validator`` (see :func:`validator_of`) makes the request conditional on the file
        being the version it names.

        Raises:
            LocationError: the caller does not allow reading ``loc`` (scheme, local folder).
            LimitError: the range is larger than :attr:`max_request_bytes`.
            StaleHeaderError: the file is no longer the version ``validator`` names (never retried).
            FetchError: the request failed after its retries, or the answer was malformed.
        """
        data, size, _ = await self.fetch_versioned(loc, start, end, stats, allow_short=allow_short, validator=validator)
        return data, size

    async def fetch_versioned(
        self, loc: Location, start: int, end: int, stats: ReadStats, *, allow_short: bool = False,
        validator: str | None = None,
    ) -> tuple[bytes, int | None, str | None]:
        """:meth:`fetch` plus the validator of the version answered (``None``: the server sent none)."""
        urls.check_readable(loc, schemes=self.options.allowed_schemes, local_roots=self.options.local_roots)
        if not 0 <= start < end or end - start > self.max_request_bytes:
            raise LimitError(loc.display, f"refusing to request bytes {start}-{end - 1}: more than "
                                          f"{self.max_request_bytes} bytes in one request")
        if loc.kind == "file":
            return await self._read_file(loc, start, end, stats, allow_short, validator)
        attempt = 0
        while True:
            try:
                return await self._http_once(loc, start, end, stats, allow_short, validator)
            except _Retry as retry:
                attempt += 1
                if attempt > self.options.retries:
                    raise retry.error from None
                stats.retries += 1
                await asyncio.sleep(self._delay(attempt, retry.retry_after))

    async def fetch_many(
        self, loc: Location, ranges: list[tuple[int, int]], stats: ReadStats, *, validator: str | None = None
    ) -> dict[tuple[int, int], bytes]:
        """Fetch several ranges of one file, coalesced, concurrently."""
        merged = coalesce(ranges, self.options.coalesce_gap, self.options.max_coalesced_bytes)

        async def one(m: MergedRange) -> dict[tuple[int, int], bytes]:
            data, _ = await self.fetch(loc, m.start, m.end, stats, validator=validator)
            return split_merged(m, data, stats)

        out: dict[tuple[int, int], bytes] = {}
        for part in await asyncio.gather(*(one(m) for m in merged)):
            out.update(part)
        return out

    # --- internals -----------------------------------------------------------------------
    def _delay(self, attempt: int, retry_after: float | None) -> float:
        o = self.options
        if retry_after is not None:
            return min(max(retry_after, 0.0), o.retry_after_max)
        return min(o.backoff_max, o.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    async def _read_file(
        self, loc: Location, start: int, end: int, stats: ReadStats, allow_short: bool, validator: str | None = None
    ) -> tuple[bytes, int, str]:
        def read() -> tuple[bytes, int, str]:
            with open(loc.path, "rb") as fh:
                # the version of the open file itself: a replace after this stat is not read
                st = os.fstat(fh.fileno())
                seen = file_validator(st.st_size, st.st_mtime_ns)
                if validator is not None and validator != seen:
                    return b"", st.st_size, seen
                return os.pread(fh.fileno(), end - start, start), st.st_size, seen

        stats.requests += 1
        try:
            data, size, seen = await asyncio.get_running_loop().run_in_executor(None, read)
        except FileNotFoundError:
            raise HttpStatusError(loc.original, "no such file", 404) from None
        except OSError as exc:
            raise FetchError(loc.original, f"cannot read file: {exc.strerror}") from None
        if validator is not None and validator != seen:
            raise stale(loc.original, "its size or modification time changed")
        stats.bytes_fetched += len(data)
        if len(data) != end - start and not (allow_short and start + len(data) == size):
            if start >= size and allow_short:
                raise TruncatedHeaderError(loc.original, "the file is empty" if size == 0 else "read past the end")
            raise ShortReadError(loc.original, f"asked for bytes {start}-{end - 1}, the file has {size} bytes")
        return data, size, seen

    async def _target_url(self, loc: Location) -> str:
        """The URL to request: the location's own, or what the read-time signer makes of it."""
        url = loc.http_url
        signer = self.options.signer
        if signer is not None and signs(signer, loc):
            # the signer sees the canonical URL (never an emulator's path-style one, whose path
            # an item could use to pick an Azure account); its query goes onto the URL requested
            canonical = redact.strip_secrets(loc.original)
            signed = signer(canonical)
            if inspect.isawaitable(signed):
                signed = await signed
            if not isinstance(signed, str) or not urls.same_origin(signed, canonical):
                raise LocationError(loc.display, "the signer returned a URL on another host; refused")
            query = urlsplit(signed).query
            base = redact.strip_secrets(url)
            return f"{base}{'&' if urlsplit(base).query else '?'}{query}" if query else base
        if redact.is_redacted(url):
            raise LocationError(loc.display, "this stored URL had its signature or token removed: it needs "
                                             "re-signing at read time (ReaderOptions.signer) or a fresh href")
        return url

    def _headers(self, loc: Location, url: str, start: int, end: int, validator: str | None = None) -> dict[str, str]:
        # conditions go in before signing: SigV4 signs them with the other headers
        headers = {"Range": f"bytes={start}-{end - 1}", **condition_headers(validator)}
        if loc.azure_account is not None:
            # Blob Storage answers ranges as 206 + Content-Range for service versions >= 2011-08-18
            headers["x-ms-version"] = azure.BLOB_API_VERSION
        if loc.s3_bucket is None:
            return headers
        if self.options.requester_pays:
            headers["x-amz-request-payer"] = "requester"
        if self.options.signs_s3:
            if not urls.may_sign(loc, url):  # never true for URLs resolve() built; checked anyway
                raise LocationError(loc.display, "refusing to sign a request to a host other than the bucket's")
            headers = self._sign(url, loc, headers)
        return headers

    def _sign(self, url: str, loc: Location, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        signing_log = logging.getLogger("botocore.auth")
        if _SIGNING_LOG_FILTER not in signing_log.filters:
            signing_log.addFilter(_SIGNING_LOG_FILTER)

        creds = self._resolve_credentials(loc)
        request = AWSRequest(method="GET", url=url, headers=dict(headers))
        S3SigV4Auth(creds, "s3", loc.s3_region).add_auth(request)
        return dict(request.headers.items())

    def _resolve_credentials(self, loc: Location):
        o = self.options
        if o.aws_access_key_id and o.aws_secret_access_key:
            from botocore.credentials import Credentials

            return Credentials(o.aws_access_key_id, o.aws_secret_access_key, o.aws_session_token)
        if self._credentials is None:
            import botocore.session

            creds = botocore.session.get_session().get_credentials()
            if creds is None:
                raise CredentialsError(
                    loc.original,
                    "signed (requester-pays) access needs AWS credentials and none were found "
                    "in the standard chain (environment, ~/.aws, instance role)",
                )
            self._credentials = creds
        return self._credentials.get_frozen_credentials()

    async def _http_once(
        self, loc: Location, start: int, end: int, stats: ReadStats, allow_short: bool, validator: str | None = None
    ) -> tuple[bytes, int | None, str | None]:
        assert self._session is not None and self._semaphore is not None, "use 'async with'"
        shown = loc.display
        url = await self._target_url(loc)
        async with self._semaphore:
            for _hop in range(self.options.max_redirects + 1):
                headers = self._headers(loc, url, start, end, validator)
                signed = "Authorization" in headers
                stats.requests += 1
                try:
                    # redirects are handled here, not by aiohttp: each hop is checked first
                    async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                        if resp.status not in _REDIRECTS:
                            seen = _check_version(resp, loc, validator)
                            data, size = await self._read_response(resp, loc, start, end, stats, allow_short)
                            expected = validator_size(validator)
                            if expected is not None and size is not None and size != expected:
                                raise stale(shown, f"its size changed from {expected} to {size} bytes")
                            return data, size, seen
                        target = resp.headers.get("Location", "")
                        resp.release()
                except asyncio.TimeoutError:
                    raise _Retry(FetchError(shown, f"timed out after {self.options.timeout:g} s")) from None
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
                    raise _Retry(FetchError(shown, f"connection dropped mid-response ({type(exc).__name__})")) from None
                except aiohttp.ClientConnectionError as exc:
                    raise _Retry(FetchError(shown, f"connection failed ({type(exc).__name__})")) from None
                except aiohttp.ClientError as exc:
                    raise FetchError(shown, f"request failed ({type(exc).__name__})") from None
                if signed:
                    raise LocationError(shown, f"redirect refused: HTTP {resp.status} to a signed request, which "
                                               "is never redirected (its credentials must not travel)")
                try:
                    next_url = urljoin(url, target)
                except ValueError:
                    next_url = ""
                if not target or not urls.same_origin(next_url, url):
                    raise LocationError(shown, f"redirect refused: HTTP {resp.status} to another host "
                                               f"({redact.redact_url(next_url) or 'no Location'})")
                stats.redirects += 1
                url = next_url
            raise LocationError(shown, f"more than {self.options.max_redirects} redirects")

    async def _read_response(
        self, resp: aiohttp.ClientResponse, loc: Location, start: int, end: int, stats: ReadStats, allow_short: bool
    ) -> tuple[bytes, int | None]:
        url = loc.display
        status = resp.status
        asked = f"bytes {start}-{end - 1}"
        if status == 206:
            content_range = resp.headers.get("Content-Range", "")
            match = _CONTENT_RANGE.fullmatch(content_range.strip())
            if match is None or int(match.group(1)) != start:
                # a shifted or missing range: possibly a confused cache or proxy, worth a retry
                raise _Retry(ShortReadError(url, f"asked for {asked}, got Content-Range {content_range[:80]!r}"))
            total = int(match.group(3)) if match.group(3) != "*" else None
            got_end = int(match.group(2)) + 1
            if got_end > end or (total is not None and got_end > total):
                raise ShortReadError(url, f"asked for {asked}, got Content-Range {content_range[:80]!r}: "
                                          "refused (malformed, not retried)")
            if allow_short:
                # the prefetch may pass the end of the file: the server says where it ends
                expected_end = min(end, total) if total is not None else got_end
            else:
                expected_end = end
            if got_end != expected_end:
                raise _Retry(ShortReadError(url, f"asked for {asked}, got Content-Range {content_range[:80]!r}"))
            body = await _read_capped(resp, expected_end - start, url, asked, stats)
            if len(body) != expected_end - start:
                raise _Retry(ShortReadError(url, f"asked for {asked}, got {len(body)} bytes ({content_range[:80]})"))
            return body, total
        if status == 200:
            # the server ignored Range. From the start of the file, the prefix asked for is
            # streamed (and the rest never read); anywhere else it is refused rather than
            # reading the object up to the range
            if start != 0:
                raise HttpStatusError(url, f"HTTP 200 to a range request: the server ignored Range for {asked} "
                                           "(rasteret needs a server with range requests)", 200)
            total = resp.content_length
            body = await _read_capped(resp, end, url, asked, stats, allow_longer=True)
            if len(body) < end and not (allow_short and (total is None or len(body) == total)):
                raise _Retry(ShortReadError(url, f"whole-object answer ended at byte {len(body)}"))
            return body, total if total is not None else (len(body) if len(body) < end else None)
        if status == 416:
            total = None
            match = re.match(r"bytes \*/(\d+)", resp.headers.get("Content-Range", ""))
            if match:
                total = int(match.group(1))
            if allow_short and start == 0:
                raise TruncatedHeaderError(url, "the file is empty")
            raise HttpStatusError(url, f"HTTP 416: {asked} lie outside the file"
                                       + (f" ({total} bytes)" if total is not None else ""), 416)
        text = (await _read_at_most(resp, 4096)).decode("utf-8", "replace")
        code = re.search(r"<Code>([A-Za-z0-9.]{1,64})</Code>", text)
        # the status and the standard phrase, never the server's own reason phrase: it is
        # third-party text that would reach logs, failure texts and the stored error column
        reason = f"HTTP {status} {_standard_phrase(status)}".strip() + (f" ({code.group(1)})" if code else "")
        if status in RETRY_STATUSES:
            raise _Retry(HttpStatusError(url, reason, status), _retry_after(resp.headers.get("Retry-After")))
        invalidate = getattr(self.options.signer, "invalidate", None)
        if invalidate is not None and loc.azure_account is not None and azure.token_expired(status, text):
            # the SAS token expired mid-read: drop it (once per token) and retry with a fresh one
            invalidate(redact.strip_secrets(loc.original), str(resp.url))
            raise _Retry(HttpStatusError(url, reason + " (SAS token expired)", status), 0.0)
        if status == 403 and loc.s3_bucket and not self.options.signs_s3:
            reason += ("; the request was unsigned: for a private bucket pass sign=True, for a requester-pays "
                       "bucket requester_pays=True, with AWS credentials")
        raise HttpStatusError(url, reason, status)


async def _read_capped(
    resp: aiohttp.ClientResponse, size: int, url: str, asked: str, stats: ReadStats, *, allow_longer: bool = False
) -> bytes:
    """The body of ``resp``, never more than ``size`` bytes held or read.

    A body announced (``Content-Length``) or sent longer than ``size`` is malformed: refused
    without reading it, not retried, and the connection is dropped rather than drained. With
    ``allow_longer`` (a whole-object answer) only the first ``size`` bytes are read.
    """
    announced = resp.content_length
    if announced is not None and announced > size and not allow_longer:
        resp.close()
        raise ShortReadError(url, f"asked for {asked} ({size} bytes), the answer announces {announced} bytes: "
                                  "refused (malformed, not retried)")
    body = await _read_at_most(resp, size if allow_longer else size + 1)
    stats.bytes_fetched += len(body)
    if len(body) > size:
        resp.close()
        raise ShortReadError(url, f"asked for {asked} ({size} bytes), the answer is longer: refused "
                                  "(malformed, not retried)")
    if allow_longer and (announced is None or announced > len(body)):
        resp.close()  # the rest of the object is never read: drop the connection
    return body


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes | bytearray:
    """At most ``limit`` bytes of the body (fewer when it ends first).

    A body whose length is announced and within ``limit`` (every well-formed range answer)
    is taken as aiohttp assembles it, joined once; otherwise the chunks are copied into one
    buffer of ``limit`` bytes allocated up front, never grown nor copied again.
    """
    announced = resp.content_length
    if announced is not None and announced <= limit:
        try:
            return await resp.content.readexactly(announced)
        except asyncio.IncompleteReadError as exc:
            return exc.partial  # ended early: the caller's length check says so
    buf = bytearray(limit)
    view = memoryview(buf)
    size = 0
    while size < limit:
        chunk = await resp.content.read(min(1 << 20, limit - size))
        if not chunk:
            break
        view[size : size + len(chunk)] = chunk
        size += len(chunk)
    view.release()
    del buf[size:]  # in place
    return buf


# --- validators: which version of a file a header describes ----------------------------------
# "etag:<ETag>" (sent as If-Match), "modified:<Last-Modified>|<size>" (If-Unmodified-Since, size
# checked against Content-Range) or "file:<size>:<mtime_ns>" (a local file, checked with fstat)
_ETAG = re.compile(r'"[\x21\x23-\x7e]{0,200}"')  # a strong ETag, ASCII only (it is sent back)
_HTTP_DATE = re.compile(r"[A-Za-z0-9 ,:]{1,64}")


def validator_of(headers: Mapping[str, str], size: int | None) -> str | None:
    """The validator of a response: its strong ETag, else its Last-Modified and the file's
    ``size``; ``None`` when it has neither (or only a weak ETag, which If-Match never matches)."""
    etag = (headers.get("ETag") or "").strip()
    if _ETAG.fullmatch(etag):
        return f"etag:{etag}"
    modified = (headers.get("Last-Modified") or "").strip()
    if size is not None and _HTTP_DATE.fullmatch(modified) and _http_date(modified) is not None:
        return f"modified:{modified}|{size}"
    return None


def file_validator(size: int, mtime_ns: int) -> str:
    """The validator of a local file: its size and modification time."""
    return f"file:{size}:{mtime_ns}"


def condition_headers(validator: str | None) -> dict[str, str]:
    """The request headers that make a GET fail (412) unless the file is still ``validator``'s
    version; none for local files, ``None`` or a malformed validator."""
    kind, _, value = (validator or "").partition(":")
    if kind == "etag" and _ETAG.fullmatch(value):
        return {"If-Match": value}
    date = value.rpartition("|")[0]
    if kind == "modified" and _HTTP_DATE.fullmatch(date):
        return {"If-Unmodified-Since": date}
    return {}


def validator_size(validator: str | None) -> int | None:
    """The file size a validator records (Last-Modified and local ones), else ``None``."""
    kind, _, value = (validator or "").partition(":")
    tail = value.rpartition("|")[2] if kind == "modified" else value.partition(":")[0] if kind == "file" else ""
    return int(tail) if tail.isdigit() else None


def same_version(stored: str, seen: str) -> bool:
    """Whether a response's validator ``seen`` names the version ``stored`` (strong ETags
    equal; Last-Modified equal as a time and size equal). Different kinds cannot tell: True."""
    kind, _, value = stored.partition(":")
    seen_kind, _, seen_value = seen.partition(":")
    if kind != seen_kind:
        return True
    if kind == "modified":
        date, _, size = value.rpartition("|")
        seen_date, _, seen_size = seen_value.rpartition("|")
        return size == seen_size and _http_date(date) == _http_date(seen_date)
    return value == seen_value


def stale(url: str, why: str) -> StaleHeaderError:
    """The error for a file that changed since its header was read."""
    return StaleHeaderError(url, f"stale header: the file changed since its header was read ({why}), so its "
                                 "stored tile offsets describe another file; nothing was decoded. Refresh the "
                                 "collection (create_collection(refresh=True), rasteret build --refresh)")


def _check_version(resp: aiohttp.ClientResponse, loc: Location, validator: str | None) -> str | None:
    """The validator of a data answer; raises :class:`StaleHeaderError` on a 412 to a
    conditional request or a version other than ``validator`` (a server ignoring If-Match)."""
    if resp.status == 412 and validator is not None:
        raise stale(loc.display, "HTTP 412: its stored version no longer matches")
    if resp.status not in (200, 206):
        return None
    size = resp.content_length if resp.status == 200 else None
    match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if match is not None and match.group(3) != "*":
        size = int(match.group(3))
    seen = validator_of(resp.headers, size)
    if validator is not None and seen is not None and not same_version(validator, seen):
        raise stale(loc.display, "the server answered another version")
    return seen


def _http_date(text: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def signs(signer: Any, loc: urls.Location) -> bool:
    """Whether the read-time ``signer`` signs requests to ``loc``.

    Never ``s3://`` locations (they are signed with SigV4, or not at all) nor local files. A
    signer that declares its scope (``signer.signs(url)``, as the Planetary Computer signer
    does) signs only what it accepts; a plain callable signs the http(s) locations it is
    given (a caller's re-signing of presigned URLs)."""
    if loc.kind != "http" or loc.s3_bucket is not None:
        return False
    declared = getattr(signer, "signs", None)
    return bool(declared(loc.original)) if callable(declared) else True


def signer_identity(signer: Any) -> Any:
    """A key for caches of clients: ``signer.identity`` when it declares one, else the object."""
    if signer is None:
        return None
    identity = getattr(signer, "identity", None)
    return identity if identity is not None else ("object", id(signer))


def _standard_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _printable(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:64]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
        return seconds if seconds == seconds else None  # NaN: ignore
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def split_merged(m: MergedRange, data: bytes, stats: ReadStats) -> dict[tuple[int, int], bytes | memoryview]:
    """Cut a merged response back into the wanted ranges, counting the bridged bytes.

    A response holding exactly one range is returned as is; several ranges are read-only
    views of it (zero copy: the response stays alive until every part is released).
    """
    if len(m.parts) == 1 and m.parts[0] == (m.start, m.end):
        return {m.parts[0]: data}
    view = memoryview(data)
    useful = 0
    last = m.start
    for start, end in m.parts:
        useful += max(0, end - max(start, last))
        last = max(last, end)
    stats.bytes_wasted += (m.end - m.start) - useful
    view = view.toreadonly()
    return {(s, e): view[s - m.start : e - m.start] for s, e in m.parts}
