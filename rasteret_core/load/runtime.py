"""What each worker process keeps for chunk reads: one client, one loop, one LRU of decoded tiles.

Chunk tasks run on dask threads (threaded scheduler, or each ``distributed`` worker's
threads). They all hand their tile reads to one event loop per process, so the process has
one connection pool (``CogClient``) and one decode pool whatever the number of threads. A
small LRU of decoded tiles, plus a table of tiles being fetched, lets neighbouring chunks
that need the same tile (chunk edges, warps' padding) share one fetch.

Nothing here is pickled into a graph: a worker builds its runtime on first use from the
task's :class:`ReaderOptions` (which never hold credentials; signing uses the standard AWS
chain on the worker).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from rasterio.windows import Window

from rasteret_core.cog import CogClient, CogHeader, ReaderOptions, ReadStats
from rasteret_core.cog.fetch import signer_identity
from rasteret_core.cog.reader import ByteBudget, tile_nbytes

DEFAULT_DECODE_BYTES = 128 * 1024 * 1024
"""Decoded tiles (and output arrays) the chunk reads of one process may hold at once, besides
the LRU below: 64 Sentinel-2 10 m tiles, about four 2048 px chunk reads at 10 m. A read waits
for room, so memory stays bounded whatever the number of dask threads, yet small reads (an
overview's few tiles) do not queue behind a fixed count of reads while their requests wait on
latency."""

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
"""Decoded tiles kept per process: 32 Sentinel-2 10 m tiles (1024 x 1024 uint16), enough for
the tiles along the edges of a row of neighbouring chunks."""

_LOCK = threading.Lock()
_RUNTIMES: dict[tuple, "Runtime"] = {}  # (pid, options, signer identity, cache bytes)

TileKey = tuple[str, str | None, int, int]  # (url, validator, IFD offset, tile index): a replaced file misses


class DecodedTiles:
    """Decoded tiles, least recently used dropped first, bounded in bytes (not thread-safe:
    only the runtime's event loop touches it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._items: OrderedDict[TileKey, np.ndarray] = OrderedDict()

    def get(self, key: TileKey) -> np.ndarray | None:
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return arr

    def put(self, key: TileKey, arr: np.ndarray) -> None:
        if arr.nbytes > self.max_bytes or key in self._items:
            return
        self._items[key] = arr
        self.bytes += arr.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes


class Runtime:
    """One process's reader: an event loop thread running one :class:`CogClient`."""

    def __init__(self, options: ReaderOptions, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 decode_bytes: int = DEFAULT_DECODE_BYTES) -> None:
        self.options = options
        self.decode_bytes = decode_bytes
        self._room: ByteBudget | None = None
        self.stats = ReadStats()
        self.cache = DecodedTiles(cache_bytes)
        self._pending: dict[TileKey, asyncio.Future] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rasteret-load-io", daemon=True)
        self._thread.start()
        self.client = CogClient(options)
        asyncio.run_coroutine_threadsafe(self.client.__aenter__(), self.loop).result()

    def read(self, reads: list[tuple[CogHeader, tuple[int, int, int, int]]]) -> list[np.ndarray]:
        """Pixels of each ``(header, (row0, row1, col0, col1))``, band 0, in the file's dtype.

        Blocks the calling thread; raises the reader's :class:`CogError` on failure.
        """
        return asyncio.run_coroutine_threadsafe(self._read(reads), self.loop).result()

    async def _read(self, reads: list[tuple[CogHeader, tuple[int, int, int, int]]]) -> list[np.ndarray]:
        if self._room is None:  # created on the loop's own thread
            self._room = ByteBudget(self.decode_bytes)
        # the read's decoded tiles and its output, reserved before anything is fetched
        size = sum(tile_nbytes(h) * len(tile_indices(h, w)) + (w[1] - w[0]) * (w[3] - w[2]) * h.dtype.itemsize
                   for h, w in reads)
        async with self._room.reserve(size):
            return await self._read_now(reads)

    async def _read_now(self, reads: list[tuple[CogHeader, tuple[int, int, int, int]]]) -> list[np.ndarray]:
        wanted: dict[TileKey, tuple[CogHeader, int]] = {}
        for header, window in reads:
            for t in tile_indices(header, window):
                wanted.setdefault((header.url, header.validator, header.ifd_offset, t), (header, t))
        tiles: dict[TileKey, np.ndarray] = {}
        missing: list[TileKey] = []
        waits: list[tuple[TileKey, asyncio.Future]] = []
        for key in wanted:
            arr = self.cache.get(key)
            if arr is not None:
                tiles[key] = arr
            elif key in self._pending:
                waits.append((key, self._pending[key]))
            else:
                missing.append(key)
        if missing:
            own = {k: self.loop.create_future() for k in missing}
            self._pending.update(own)
            try:
                # one read_windows call: tiles of one file are merged into few requests
                arrays = await self.client.read_windows(
                    [(wanted[k][0], tile_window(*wanted[k])) for k in missing], stats=self.stats)
            except BaseException as exc:
                for k, fut in own.items():
                    self._pending.pop(k, None)
                    if not fut.done():
                        fut.set_exception(exc)
                        fut.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            for k, arr in zip(missing, arrays):
                tile = arr[0]
                tiles[k] = tile
                self.cache.put(k, tile)
                self._pending.pop(k, None)
                own[k].set_result(tile)
        for key, fut in waits:
            tiles[key] = await fut
        return [_assemble(header, window, tiles) for header, window in reads]


def runtime(options: ReaderOptions, cache_bytes: int = DEFAULT_CACHE_BYTES) -> Runtime:
    """This process's runtime for ``options`` (created on first use, also after a fork)."""
    # ReaderOptions compare without their signer: two loads differing only in the signer would
    # otherwise share one client, and sign with the first one's tokens
    key = (os.getpid(), options, signer_identity(options.signer), cache_bytes)
    with _LOCK:
        rt = _RUNTIMES.get(key)
        if rt is None:
            rt = _RUNTIMES[key] = Runtime(options, cache_bytes)
        return rt


@atexit.register
def _close_all() -> None:
    """Close this process's connection pools at exit (their loops run in daemon threads)."""
    pid = os.getpid()
    with _LOCK:
        mine = [rt for (owner, *_), rt in _RUNTIMES.items() if owner == pid]
    for rt in mine:
        try:
            asyncio.run_coroutine_threadsafe(rt.client.__aexit__(None, None, None), rt.loop).result(5)
            rt.loop.call_soon_threadsafe(rt.loop.stop)
        except Exception:  # exiting anyway: a pool that cannot close is not worth an error
            pass


def process_stats() -> dict[str, Any]:
    """Requests, bytes and tile-cache hits of this process's load runtimes (for reports/tests)."""
    total = ReadStats()
    hits = 0
    pid = os.getpid()
    with _LOCK:
        for (owner, *_), rt in _RUNTIMES.items():
            if owner != pid:
                continue
            total.add(rt.stats)
            hits += rt.cache.hits
    return {**total.as_dict(), "cache_hits": hits}


def tile_indices(header: CogHeader, window: tuple[int, int, int, int]) -> list[int]:
    """Row-major indices of the tiles a ``(row start, row stop, col start, col stop)`` window touches."""
    r0, r1, c0, c1 = window
    th, tw = header.tile_height, header.tile_width
    return [r * header.tiles_across + c
            for r in range(r0 // th, (r1 - 1) // th + 1)
            for c in range(c0 // tw, (c1 - 1) // tw + 1)]


def tile_window(header: CogHeader, tile: int) -> Window:
    """The pixel window of tile number ``tile`` (row-major), cut at the image's edges."""
    r, c = divmod(tile, header.tiles_across)
    row, col = r * header.tile_height, c * header.tile_width
    return Window(col, row, min(header.tile_width, header.width - col), min(header.tile_height, header.height - row))


def _assemble(header: CogHeader, window: tuple[int, int, int, int], tiles: dict[TileKey, np.ndarray]) -> np.ndarray:
    r0, r1, c0, c1 = window
    out = np.empty((r1 - r0, c1 - c0), dtype=header.dtype)
    th, tw = header.tile_height, header.tile_width
    for t in tile_indices(header, window):
        tr, tc = divmod(t, header.tiles_across)
        y0, x0 = tr * th, tc * tw
        tile = tiles[(header.url, header.validator, header.ifd_offset, t)]
        ya, yb = max(r0, y0), min(r1, y0 + tile.shape[0])
        xa, xb = max(c0, x0), min(c1, x0 + tile.shape[1])
        out[ya - r0:yb - r0, xa - c0:xb - c0] = tile[ya - y0:yb - y0, xa - x0:xb - x0]
    return out
