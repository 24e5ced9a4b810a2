"""Which stored band headers describe files that changed since they were harvested.

Each header carries its file's validator (ETag, else Last-Modified and size; size and mtime
for a local file). :func:`changed_assets` asks each distinct file once whether it is still
that version, with a one-byte read conditional on the validator: the same request path
(signing, location policy, redirects, retries) as tile reads, and one cheap request per file.
A refresh re-harvests exactly the ``(scene, band)`` pairs it returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Mapping

from rasteret_core.cog import CogClient, CogError, ReaderOptions, ReadStats
from rasteret_core.cog.reader import run_sync
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import HttpStatusError

log = logging.getLogger(__name__)

GONE_STATUSES = {404, 410}
"""A stored file that answers these no longer exists: its header is stale too."""


async def achanged_assets(
    scenes: Iterable[Scene],
    reader_options: ReaderOptions | Mapping[str, Any] | None = None,
    *,
    bands: Iterable[str] | None = None,
    client: CogClient | None = None,
    stats: ReadStats | None = None,
) -> set[tuple[str, str]]:
    """``(scene id, band)`` of every stored header (of ``bands``, default all) whose file
    changed or vanished.

    One conditional one-byte request per distinct file (bands sharing a COG share it), at
    most ``max_concurrency`` at once. A header without a validator (collections written
    before validators were recorded) is compared by file size only. A file that cannot be
    asked (network failure, 403) is not reported: its stored header is kept, and a warning
    logged.
    """
    owners: dict[str, list[tuple[str, str]]] = {}
    headers = {}
    wanted = set(bands) if bands is not None else None
    for scene in scenes:
        for band, asset in scene.bands.items():
            if asset.header is None or (wanted is not None and band not in wanted):
                continue
            key = asset.header.url
            headers.setdefault(key, asset.header)
            owners.setdefault(key, []).append((scene.id, band))
    if not headers:
        return set()
    stats = stats if stats is not None else ReadStats()

    async def run(own: CogClient) -> set[tuple[str, str]]:
        limit = asyncio.Semaphore(own.options.max_concurrency)

        async def one(url: str) -> bool:
            async with limit:
                try:
                    return not await own.is_current(headers[url], stats=stats)
                except HttpStatusError as exc:
                    if exc.status in GONE_STATUSES:
                        return True
                    log.warning("cannot tell whether %s changed: %s", exc.url, exc.reason)
                except CogError as exc:
                    log.warning("cannot tell whether %s changed: %s", exc.url, exc.reason)
                return False

        urls = list(headers)
        changed = await asyncio.gather(*(one(u) for u in urls))
        return {pair for url, gone in zip(urls, changed) if gone for pair in owners[url]}

    if client is not None:
        return await run(client)
    async with CogClient(ReaderOptions.coerce(reader_options)) as own:
        return await run(own)


def changed_assets(
    scenes: Iterable[Scene], reader_options: ReaderOptions | Mapping[str, Any] | None = None, **kwargs: Any
) -> set[tuple[str, str]]:
    """Synchronous :func:`achanged_assets`."""
    scenes = list(scenes)
    return run_sync(lambda: achanged_assets(scenes, reader_options, **kwargs))
