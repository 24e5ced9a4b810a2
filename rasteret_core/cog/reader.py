"""Reading headers and pixel windows: the public entry points of ``rasteret_core.cog``.

``CogClient`` holds one connection pool and one decode thread pool; the module-level
functions create a short-lived client when none is given.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rasteret_core.cog import tiff
from rasteret_core.cog.codecs import check_supported, cmyk_to_rgba, decode_tile
from rasteret_core.errors import (
    ArgumentTypeError, CogError, DecodeError, FetchError, InvalidTiffError, LimitError, StaleHeaderError, WindowError,
)
from rasteret_core.cog.fetch import MergedRange, RangeFetcher, coalesce, split_merged
from rasteret_core.cog.header import CogHeader, build_header
from rasteret_core.cog.options import ReaderOptions, ReadStats
from rasteret_core.cog.tile_cache import TileCache
from rasteret_core.redact import redact_url
from rasteret_core.cog.urls import Location, resolve

_POOL_LOCK = threading.Lock()
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _decode_pool(threads: int | None) -> ThreadPoolExecutor:
    """Process-wide decode pools (imagecodecs releases the GIL, so threads use every core).

    Keyed by process: a process forked after a read (DataLoader workers, multiprocessing)
    inherits the parent's pools without their threads, and would wait for ever on them."""
    n = threads or os.cpu_count() or 2
    key = (os.getpid(), n)
    with _POOL_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="rasteret-decode")
        return _POOLS[key]


def _forget_pools_after_fork() -> None:
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()  # the parent's may have been held by a thread that does not exist here
    _POOLS.clear()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


class CogClient:
    """A connection pool plus decode threads, shared by many header and window reads.

    ``async with CogClient(max_concurrency=32) as client:`` then ``await client.header(url)``
    and ``await client.read_windows([...])``. Keyword options are :class:`ReaderOptions` fields.
    """

    def __init__(self, options: ReaderOptions | None = None, **kwargs: Any) -> None:
        if options is not None and kwargs:
            raise ArgumentTypeError("pass either options= or keyword options, not both")
        self.options = options or ReaderOptions.from_kwargs(kwargs)
        self._fetcher = RangeFetcher(self.options)
        # shared by every read_windows call of this client, so concurrent calls (e.g. AOI
        # batches) stay within one in-flight byte budget and one queue of decode jobs
        self._budget: ByteBudget | None = None
        self._inflight: asyncio.Semaphore | None = None

    async def __aenter__(self) -> "CogClient":
        await self._fetcher.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._fetcher.__aexit__(*exc)

    @property
    def connections(self) -> dict[str, float]:
        """Connections this client opened (``opened``) and its slowest connect in seconds."""
        return self._fetcher.connections

    async def header(self, url: str | os.PathLike[str], *, stats: ReadStats | None = None) -> CogHeader:
        """Read and parse the header of ``url``: one request for a GDAL COG."""
        shared = stats
        # count this header's requests on its own: concurrent headers share ``shared``
        stats = ReadStats()
        try:
            return await asyncio.wait_for(self._header(url, stats), self.options.header_deadline)
        except asyncio.TimeoutError:
            raise FetchError(redact_url(os.fspath(url)), f"the header was not read within header_deadline="
                                                         f"{self.options.header_deadline:g} s ({stats.requests}"
                                                         f" requests, {stats.retries} retries)") from None
        finally:
            if shared is not None:
                shared.add(stats)

    async def _header(self, url: str | os.PathLike[str], stats: ReadStats) -> CogHeader:
        o = self.options
        loc = resolve(url, endpoint_url=o.endpoint_url, region=o.region, azure_endpoint_url=o.azure_endpoint_url)
        shown = loc.display
        # the version answered first is the one the header describes: later parts must match it
        data, size, validator = await self._fetcher.fetch_versioned(loc, 0, o.prefetch, stats, allow_short=True)
        buf = tiff.SparseBuffer(size)
        buf.add(0, data)
        for _ in range(o.max_header_requests):
            try:
                structure = tiff.parse_tiff(buf, shown)
                break
            except tiff.NeedBytes as need:
                wanted = []
                for start, end in need.ranges:
                    stop = start + max(end - start, o.prefetch)
                    wanted.append((start, min(stop, size) if size is not None else stop))
                if buf.fetched_bytes + sum(e - s for s, e in wanted) > o.max_header_bytes:
                    raise InvalidTiffError(shown, f"header is larger than {o.max_header_bytes} bytes") from None
                for m in coalesce(wanted, o.coalesce_gap, o.max_header_bytes):
                    chunk, _ = await self._fetcher.fetch(loc, m.start, m.end, stats, validator=validator)
                    buf.add(m.start, chunk)
        else:
            raise InvalidTiffError(shown, f"header needs more than {o.max_header_requests} requests")
        stats.header_requests += stats.requests
        header = build_header(structure, redact_url(os.fspath(url)), size, cmyk=o.cmyk, validator=validator)
        check_supported(header)
        return header

    async def is_current(self, header: CogHeader, *, stats: ReadStats | None = None) -> bool:
        """Whether the file at ``header.url`` is still the version ``header`` was read from.

        One request for one byte, conditional on the header's validator (so it is signed,
        checked and redirected as tile reads are); a header without a validator is compared
        by file size only. Raises the fetch's :class:`CogError` when the file cannot be asked.
        """
        o = self.options
        loc = resolve(header.url, endpoint_url=o.endpoint_url, region=o.region, azure_endpoint_url=o.azure_endpoint_url)
        try:
            _, size = await self._fetcher.fetch(loc, 0, 1, stats if stats is not None else ReadStats(),
                                                allow_short=True, validator=header.validator)
        except StaleHeaderError:
            return False
        return header.file_size is None or size is None or size == header.file_size

    async def read_windows(
        self,
        requests: Iterable[tuple[CogHeader, Any]],
        *,
        overview: int | None = None,
        stats: ReadStats | None = None,
        return_exceptions: bool = False,
    ) -> list[np.ndarray | CogError]:
        """Read many windows at once; see :func:`aread_windows`."""
        stats = stats if stats is not None else ReadStats()
        o = self.options
        plans: list[_Plan | None] = []
        errors: dict[int, CogError] = {}
        for i, (header, window) in enumerate(requests):
            try:
                plans.append(_plan(header, window, overview, o))
            except CogError as exc:
                if not return_exceptions:
                    raise
                plans.append(None)
                errors[i] = exc
        # one fetch per distinct tile, pasted into every window that needs it
        wanted: dict[tuple[str, int, int], list[tuple[int, _Plan]]] = {}
        for i, plan in enumerate(plans):
            if plan is None:
                continue
            for tile in plan.tiles:
                wanted.setdefault((plan.header.url, plan.header.ifd_offset, tile), []).append((i, plan))
        by_file = _tiles_by_file((p.header, p.tiles) for p in plans if p is not None)

        pool = _decode_pool(self.options.decode_threads)
        loop = asyncio.get_running_loop()
        if self._budget is None or self._inflight is None:
            self._budget = ByteBudget(self.options.max_inflight_bytes)
            self._inflight = asyncio.Semaphore(self.options.max_concurrency * 2)
        budget, inflight = self._budget, self._inflight

        def fail(header: CogHeader, tiles: Iterable[int], exc: CogError) -> None:
            for t in tiles:
                for i, _plan in wanted[(header.url, header.ifd_offset, t)]:
                    errors.setdefault(i, exc)
            if not return_exceptions:
                raise exc

        async def run_file(header: CogHeader, tiles: set[int]) -> None:
            try:
                loc = resolve(header.url, endpoint_url=o.endpoint_url, region=o.region, azure_endpoint_url=o.azure_endpoint_url)
            except CogError as exc:
                return fail(header, tiles, exc)
            requests = file_requests(header, tiles, o)
            for t, problem in requests.refused:
                fail(header, [t], problem)
            for t in requests.sparse:
                await loop.run_in_executor(pool, _paste_sparse, header, t, wanted[(header.url, header.ifd_offset, t)])
            ranges = requests.ranges
            cache = o.tile_cache if loc.kind == "http" and header.validator else None
            cache_url = _cache_url(loc)
            stale: list[StaleHeaderError] = []  # once the file is known replaced, its other ranges are not asked

            def tiles_of(parts: Iterable[tuple[int, int]]) -> list[int]:
                return [t for r in parts for t in ranges[r]]

            def paste(t: int, data: bytes | memoryview):
                return loop.run_in_executor(pool, _decode_and_paste, header, t, data, wanted[(header.url, header.ifd_offset, t)])

            async def run_range(m) -> None:
                async with budget.reserve(m.end - m.start), inflight:
                    try:
                        if stale:
                            raise stale[0]
                        # conditional on the header's version: a replaced file is never decoded
                        data, _ = await self._fetcher.fetch(loc, m.start, m.end, stats, validator=header.validator)
                        parts = split_merged(m, data, stats)
                        stats.tiles_read += len(tiles_of(m.parts))
                        # one decode job per tile so a merged request still decodes on every core
                        await asyncio.gather(*(paste(t, parts[r]) for r in m.parts for t in ranges[r]))
                        if cache is not None:  # kept only once every tile of it decoded
                            await asyncio.gather(*(loop.run_in_executor(pool, cache.put, cache_url, header.validator,
                                                                        r[0], r[1], parts[r]) for r in m.parts))
                    except CogError as exc:
                        if isinstance(exc, StaleHeaderError):
                            stale.append(exc)  # every window of a replaced file fails, cached tiles too
                            return fail(header, tiles_of(ranges), exc)
                        fail(header, tiles_of(m.parts), exc)

            async def run_cached(r: tuple[int, int], missed: list[tuple[int, int]]) -> None:
                async with budget.reserve(r[1] - r[0]):
                    data = await loop.run_in_executor(pool, cache.get, cache_url, header.validator, r[0], r[1])
                    if data is None:  # removed by another process since: fetched below
                        missed.append(r)
                        return
                    try:
                        await asyncio.gather(*(paste(t, data) for t in ranges[r]))
                    except CogError:  # not the file's bytes after all: dropped, and fetched below
                        await loop.run_in_executor(pool, cache.discard, cache_url, header.validator, r[0], r[1])
                        missed.append(r)
                        return
                    stats.tiles_from_cache += len(ranges[r])

            def requests_for(parts: list[tuple[int, int]]):
                return coalesce(parts, o.coalesce_gap, o.max_coalesced_bytes)

            held = set(await loop.run_in_executor(pool, cache.holds, cache_url, header.validator, list(ranges))) \
                if cache is not None and ranges else set()
            if not held:
                await asyncio.gather(*(run_range(m) for m in requests.merged))
                return
            if len(held) == len(ranges):
                # no tile request will send the file's version: one conditional byte does, so a
                # replaced file is still never decoded
                try:
                    await self._fetcher.fetch(loc, 0, 1, stats, allow_short=True, validator=header.validator)
                except CogError as exc:
                    return fail(header, tiles_of(ranges), exc)
            missed: list[tuple[int, int]] = []
            await asyncio.gather(*(run_cached(r, missed) for r in held),
                                 *(run_range(m) for m in requests_for([r for r in ranges if r not in held])))
            if missed:
                await asyncio.gather(*(run_range(m) for m in requests_for(sorted(missed))))

        await asyncio.gather(*(run_file(h, t) for h, t in by_file.values()))
        out: list[np.ndarray | CogError] = []
        for i, plan in enumerate(plans):
            out.append(errors[i] if i in errors else _finish(plan))
        return out


def _cache_url(loc: Location) -> str:
    """What names a file in the tile cache: the address actually read (an ``s3://`` URL at
    another endpoint is another object), without an Azure SAS token (it authorises the read,
    it does not name the blob, and it changes with every signing)."""
    url = loc.http_url or str(loc.path)
    return url.split("?", 1)[0] if loc.azure_account else url


def _tile_range_problem(header: CogHeader, tile: int, offset: int, count: int, o: ReaderOptions) -> CogError | None:
    """Why tile ``tile``'s stored bytes may not be fetched, or ``None``: a byte count above
    ``max_tile_bytes``, or bytes past the end of the file when its size is known."""
    if count > o.max_tile_bytes:
        return LimitError(header.url, f"tile {tile} claims {count} bytes, more than max_tile_bytes="
                                      f"{o.max_tile_bytes}")
    if header.file_size is not None and offset + count > header.file_size:
        return InvalidTiffError(header.url, f"tile {tile} (bytes {offset}-{offset + count - 1}) lies past the "
                                            f"end of the {header.file_size}-byte file")
    return None


class ByteBudget:
    """At most ``limit`` bytes reserved at once (one larger reservation may run alone).

    Waiters are served first come, first served, and a release wakes only the waiters that now
    fit: a read of hundreds of ranges would otherwise wake every waiter on every release."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    @contextlib.asynccontextmanager
    async def reserve(self, size: int):
        if not self._waiters and self._fits(size):
            self.used += size
        else:
            granted = asyncio.get_running_loop().create_future()
            self._waiters.append((size, granted))
            try:
                await granted
            except BaseException:
                if granted.done() and not granted.cancelled():
                    self._release(size)  # granted, then cancelled before it could run
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove((size, granted))
                    self._release(0)  # it may have headed the queue: serve who is next
                raise
        try:
            yield
        finally:
            self._release(size)

    def _release(self, size: int) -> None:
        self.used -= size
        while self._waiters:
            wanted, granted = self._waiters[0]
            if granted.done():  # its task was cancelled while waiting
                self._waiters.popleft()
            elif self._fits(wanted):
                self._waiters.popleft()
                self.used += wanted
                granted.set_result(None)
            else:
                break


@dataclass(frozen=True)
class FileRequests:
    """The requests one read makes to one image: the plan and the read share this.

    ``ranges`` maps each tile byte range to the tiles stored there, ``sparse`` lists tiles
    with no bytes (filled with nodata, no request), ``merged`` the coalesced HTTP requests,
    ``refused`` the tiles whose stored range breaks the reader's limits, with the reason.
    """

    header: CogHeader
    ranges: dict[tuple[int, int], list[int]]
    sparse: list[int]
    merged: list[MergedRange]
    refused: list[tuple[int, CogError]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(m.end - m.start for m in self.merged)


def file_requests(header: CogHeader, tiles: Iterable[int], options: ReaderOptions) -> FileRequests:
    """The coalesced range requests that read ``tiles`` of ``header``'s image."""
    ranges: dict[tuple[int, int], list[int]] = {}
    sparse: list[int] = []
    refused: list[tuple[int, CogError]] = []
    for t in sorted(tiles):
        off, cnt = int(header.tile_offsets[t]), int(header.tile_byte_counts[t])
        if cnt == 0 or off == 0:
            sparse.append(t)
            continue
        problem = _tile_range_problem(header, t, off, cnt, options)
        if problem is not None:
            refused.append((t, problem))
            continue
        ranges.setdefault((off, off + cnt), []).append(t)
    merged = coalesce(list(ranges), options.coalesce_gap, options.max_coalesced_bytes)
    return FileRequests(header, ranges, sparse, merged, refused)


def _tiles_by_file(pairs: Iterable[tuple[CogHeader, list[int]]]) -> dict[tuple[str, int], tuple[CogHeader, set[int]]]:
    by_file: dict[tuple[str, int], tuple[CogHeader, set[int]]] = {}
    for header, tiles in pairs:
        by_file.setdefault((header.url, header.ifd_offset), (header, set()))[1].update(tiles)
    return by_file


def plan_requests(
    requests: Iterable[tuple[CogHeader, Any]], options: ReaderOptions, *, overview: int | None = None
) -> list[FileRequests]:
    """What :meth:`CogClient.read_windows` would request for ``requests``, without reading.

    Same tile selection, deduplication and coalescing as the read itself (no output arrays).
    """
    tiles = (_window_tiles(h, w, overview, options) for h, w in requests)
    by_file = _tiles_by_file((t[0], t[5]) for t in tiles)
    return [file_requests(header, tiles, options) for header, tiles in by_file.values()]


@dataclass
class _Plan:
    header: CogHeader
    row0: int
    col0: int
    height: int
    width: int
    tiles: list[int]
    out: np.ndarray = field(repr=False)


def _window_ints(window: Any) -> tuple[int, int, int, int]:
    if isinstance(window, tuple) and len(window) == 2 and all(isinstance(p, tuple) for p in window):
        (r0, r1), (c0, c1) = window
        return int(c0), int(r0), int(c1 - c0), int(r1 - r0)
    col, row = getattr(window, "col_off"), getattr(window, "row_off")
    width, height = getattr(window, "width"), getattr(window, "height")
    return int(round(col)), int(round(row)), int(round(width)), int(round(height))


def tile_nbytes(header: CogHeader) -> int:
    """Bytes of one decoded tile (or strip) of ``header``'s image."""
    samples = 1 if header.planar_configuration == 2 else header.samples_per_pixel
    return header.tile_width * header.tile_height * samples * header.dtype.itemsize


MAX_WINDOW_TILES = 1_000_000
"""Tiles one window may touch (every plane counted): the tile list is built before any read."""


def check_window_limits(header: CogHeader, width: int, height: int, options: ReaderOptions, *, tiles: int = 0) -> None:
    """Raise :class:`LimitError` when a ``width`` x ``height`` window of ``header``, or one of
    its tiles, is larger than ``options`` allows (checked before anything is allocated).

    The window counts every sample of every plane: ``width x height x samples per pixel``
    against ``max_window_pixels`` (a 400-sample file's window is 400 times a one-band one)."""
    samples = width * height * header.samples_per_pixel
    if samples > options.max_window_pixels:
        size = samples * header.dtype.itemsize
        raise LimitError(header.url, f"a {width} x {height} window of {header.samples_per_pixel} sample(s) per pixel is"
                                     f" {samples} samples ({size} bytes of {header.dtype.name}), more than"
                                     f" max_window_pixels={options.max_window_pixels}; read smaller windows, or use"
                                     " load(..., chunks=...), which streams")
    if tiles > MAX_WINDOW_TILES:
        raise LimitError(header.url, f"a {width} x {height} window touches {tiles} tiles of {header.tile_width} x"
                                     f" {header.tile_height}, more than {MAX_WINDOW_TILES}; read smaller windows")
    if tile_nbytes(header) > options.max_tile_bytes:
        raise LimitError(header.url, f"{header.tile_width} x {header.tile_height} x {header.samples_per_pixel} "
                                     f"{header.dtype.name} tiles decode to {tile_nbytes(header)} bytes, more than "
                                     f"max_tile_bytes={options.max_tile_bytes}")


def _plan(header: CogHeader, window: Any, overview: int | None, options: ReaderOptions) -> _Plan:
    header, row, col, height, width, tiles = _window_tiles(header, window, overview, options)
    out = np.empty((header.samples_per_pixel, height, width), dtype=header.dtype)
    return _Plan(header, row, col, height, width, tiles, out)


def _window_tiles(header: CogHeader, window: Any, overview: int | None, options: ReaderOptions):
    """(image header, row, col, height, width, tiles) of a window checked against ``options``'s
    limits before its tile list is built."""
    if overview is not None:
        if not 0 <= overview < len(header.overviews):
            raise WindowError(header.url, f"overview level {overview} does not exist ({len(header.overviews)} overviews)")
        header = header.overviews[overview]
    if window is None:
        col, row, width, height = 0, 0, header.width, header.height
    else:
        try:
            col, row, width, height = _window_ints(window)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise WindowError(header.url, f"not a window: {window!r:.100} ({type(exc).__name__})") from None
    if width <= 0 or height <= 0 or col < 0 or row < 0 or col + width > header.width or row + height > header.height:
        raise WindowError(
            header.url,
            f"window (col_off={col}, row_off={row}, width={width}, height={height}) is not inside the "
            f"{header.width}x{header.height} image",
        )
    tw, th = header.tile_width, header.tile_height
    count = header.planes * ((row + height - 1) // th - row // th + 1) * ((col + width - 1) // tw - col // tw + 1)
    check_window_limits(header, width, height, options, tiles=count)
    per_plane = header.tiles_across * header.tiles_down
    tiles = [
        p * per_plane + r * header.tiles_across + c
        for p in range(header.planes)
        for r in range(row // th, (row + height - 1) // th + 1)
        for c in range(col // tw, (col + width - 1) // tw + 1)
    ]
    return header, row, col, height, width, tiles


def _finish(plan: _Plan) -> np.ndarray:
    """The window as GDAL returns it: colour conversions need every band, so they run here."""
    if plan.header.color_conversion == "cmyk_to_rgba":
        return cmyk_to_rgba(plan.out)
    return plan.out


def _targets(header: CogHeader, tile: int, plan: _Plan, rows: int, cols: int | None = None):
    """Slices pasting ``tile`` (``rows`` x ``cols`` decoded) into ``plan.out``."""
    per_plane = header.tiles_across * header.tiles_down
    plane, idx = divmod(tile, per_plane)
    tr, tc = divmod(idx, header.tiles_across)
    y0, x0 = tr * header.tile_height, tc * header.tile_width
    r0, r1 = max(plan.row0, y0), min(plan.row0 + plan.height, y0 + rows)
    c0, c1 = max(plan.col0, x0), min(plan.col0 + plan.width, x0 + (header.tile_width if cols is None else cols))
    if r0 >= r1 or c0 >= c1:
        return None
    bands = slice(plane, plane + 1) if header.planar_configuration == 2 else slice(None)
    dst = (bands, slice(r0 - plan.row0, r1 - plan.row0), slice(c0 - plan.col0, c1 - plan.col0))
    src = (slice(r0 - y0, r1 - y0), slice(c0 - x0, c1 - x0))
    return dst, src


def _whole_tile_view(header: CogHeader, tile: int, targets) -> np.ndarray | None:
    """The place of ``tile`` in its only window, shaped like a decoded tile, when the window
    holds the whole tile: the decoder then writes straight into the output."""
    if len(targets) != 1 or not header.is_tiled:
        return None
    plan = targets[0][1]
    plane, idx = divmod(tile, header.tiles_across * header.tiles_down)
    tr, tc = divmod(idx, header.tiles_across)
    y0, x0 = tr * header.tile_height - plan.row0, tc * header.tile_width - plan.col0
    if y0 < 0 or x0 < 0 or y0 + header.tile_height > plan.height or x0 + header.tile_width > plan.width:
        return None
    bands = slice(plane, plane + 1) if header.planar_configuration == 2 else slice(None)
    view = plan.out[bands, y0 : y0 + header.tile_height, x0 : x0 + header.tile_width]
    return np.moveaxis(view, 0, -1)


def _rows_needed(header: CogHeader, tile_row: int, tile_col: int, targets) -> tuple[int, int, int] | None:
    """``(first row, stop row, stop column)`` of a tile that its windows read, in tile pixels
    (the region the predictor is undone on); None for strips, whose rows are not tile rows."""
    if not header.is_tiled:
        return None
    y0, x0 = tile_row * header.tile_height, tile_col * header.tile_width
    r0 = min(max(0, plan.row0 - y0) for _i, plan in targets)
    r1 = max(min(header.tile_height, plan.row0 + plan.height - y0) for _i, plan in targets)
    c1 = max(min(header.tile_width, plan.col0 + plan.width - x0) for _i, plan in targets)
    return r0, r1, c1


def _decode_and_paste(header: CogHeader, tile: int, data: bytes, targets) -> None:
    direct = _whole_tile_view(header, tile, targets)
    if direct is not None:
        decode_tile(header, data, out=direct)
        return
    # this thread's reusable buffer: consumed (pasted) before the thread decodes again
    tile_row, tile_col = divmod(tile % (header.tiles_across * header.tiles_down), header.tiles_across)
    arr = decode_tile(header, data, reuse_buffer=True, region=_rows_needed(header, tile_row, tile_col, targets))
    expected_rows = min(header.tile_height, header.height - tile_row * header.tile_height)
    expected_cols = min(header.tile_width, header.width - tile_col * header.tile_width)
    if arr.shape[0] < expected_rows or arr.shape[1] < expected_cols:
        raise DecodeError(
            header.url, f"tile {tile} decoded to {arr.shape[0]}x{arr.shape[1]} pixels, expected {expected_rows}x{expected_cols}"
        )
    for _i, plan in targets:
        target = _targets(header, tile, plan, arr.shape[0], arr.shape[1])
        if target is not None:
            dst, src = target
            plan.out[dst] = np.moveaxis(arr[src], -1, 0)


def _paste_sparse(header: CogHeader, tile: int, targets) -> None:
    fill = header.nodata if header.nodata is not None else 0
    try:
        value = np.array(fill).astype(header.dtype)
    except (ValueError, OverflowError):
        value = np.zeros((), header.dtype)
    for _i, plan in targets:
        target = _targets(header, tile, plan, header.tile_height)
        if target is not None:
            plan.out[target[0]] = value


# --- module-level API ----------------------------------------------------------------------
def run_sync(awaitable_factory) -> Any:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if not running:  # outside the except block, so errors are not chained to "no running event loop"
        return asyncio.run(awaitable_factory())
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(awaitable_factory()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="rasteret-sync")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def aread_header(
    url: str | os.PathLike[str], *, client: CogClient | None = None, stats: ReadStats | None = None, **options: Any
) -> CogHeader:
    """Read the header of a (Cloud-Optimized) GeoTIFF at ``url``.

    ``url`` is ``http(s)://...``, ``s3://bucket/key`` or a local path. Options are
    :class:`ReaderOptions` fields (``prefetch``, ``requester_pays``, ``endpoint_url``, ...).
    A GDAL COG costs one request. Raises a :class:`CogError` subclass naming the URL.
    """
    if client is not None:
        return await client.header(url, stats=stats)
    async with CogClient(**options) as own:
        return await own.header(url, stats=stats)


def read_header(url: str | os.PathLike[str], **options: Any) -> CogHeader:
    """Synchronous :func:`aread_header`."""
    return run_sync(lambda: aread_header(url, **options))


async def aread_windows(
    requests: Iterable[tuple[CogHeader, Any]],
    *,
    overview: int | None = None,
    client: CogClient | None = None,
    stats: ReadStats | None = None,
    return_exceptions: bool = False,
    **options: Any,
) -> list[np.ndarray | CogError]:
    """Read many ``(header, window)`` pairs concurrently, without any header request.

    Each result has shape ``(samples, height, width)`` and the file's dtype, exactly what
    ``rasterio.open(url).read(window=window)`` returns. ``window`` is a
    ``rasterio.windows.Window`` (integer offsets and sizes), ``((row0, row1), (col0, col1))``
    or ``None`` for the whole image. ``overview`` selects an overview level (0 = the first,
    as rasterio's ``overview_level``). Tiles needed by several windows are fetched once;
    nearby tiles of a file are fetched in one request. With ``return_exceptions`` a failed
    window yields its :class:`CogError` instead of raising.
    """
    requests = list(requests)
    if client is not None:
        return await client.read_windows(requests, overview=overview, stats=stats, return_exceptions=return_exceptions)
    async with CogClient(**options) as own:
        return await own.read_windows(requests, overview=overview, stats=stats, return_exceptions=return_exceptions)


def read_windows(requests: Iterable[tuple[CogHeader, Any]], **kwargs: Any) -> list[np.ndarray | CogError]:
    """Synchronous :func:`aread_windows`."""
    requests = list(requests)
    return run_sync(lambda: aread_windows(requests, **kwargs))


def read_window(header: CogHeader, window: Any = None, **kwargs: Any) -> np.ndarray:
    """Read one window of ``header``'s image; see :func:`aread_windows`."""
    return read_windows([(header, window)], **kwargs)[0]
