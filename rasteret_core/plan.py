"""A read's cost before the read: scenes, tiles, requests after coalescing, bytes and price.

A plan runs the reader's own planning (the same windows, tile deduplication, coalescing
and read batches as the read, :func:`rasteret_core.cog.reader.plan_requests`), fetches no
pixel and requests no header: the headers are in the collection. The real read then reports
the same figures (``ReadStats``), and :meth:`ReadPlan.compare` puts them side by side.

Price: requester-pays buckets (``s3://usgs-landsat``) bill the reader for every GET and, when
the reader runs outside the bucket's AWS region, for the bytes transferred. Other sources
(public buckets, Planetary Computer) cost the reader nothing; their requests are still counted.

    >>> plan = r.plan("get_xarray", geometries=aois, bands=["SR_B4", "SR_B5"])
    >>> print(plan.summary())
    >>> ds = r.get_xarray(aois, ["SR_B4", "SR_B5"]); plan.compare(r.last_stats)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from rasteret_core.cog import CogHeader, ReaderOptions, ReadStats
from rasteret_core.cog.reader import FileRequests, plan_requests
from rasteret_core.cog.urls import resolve
from rasteret_core.collection.scene import Scene
from rasteret_core.load import chunk_tasks
from rasteret_core.load.runtime import tile_window
from rasteret_core.read.aoi import AoiReadResult, job_batches, read_jobs
from rasteret_core.read.points import named_points, plan_point_windows, point_batches

GIB = 1024**3  # AWS bills data transfer per GB of 2^30 bytes


@dataclass(frozen=True)
class Prices:
    """AWS list prices in USD for reads billed to the requester.

    Defaults: S3 Standard in us-west-2 (home of ``usgs-landsat`` and ``sentinel-cogs``), as
    listed on ``as_of``. Pass your own (other regions, negotiated prices, later changes).
    """

    get_per_1000: float = 0.0004
    """GET requests, per 1,000."""
    transfer_internet_per_gb: float = 0.09
    """Data transfer out to the internet, first 10 TB a month."""
    transfer_inter_region_per_gb: float = 0.02
    """Data transfer to another AWS region."""
    as_of: str = "2025-06"
    """When these defaults were taken from the AWS S3 pricing page."""

    def transfer_per_gb(self, bucket_region: str | None, reader_region: str | None) -> float:
        """The transfer price from ``bucket_region`` to a reader in ``reader_region``
        (``None``: outside AWS, over the internet; the same region: free)."""
        if reader_region is None:
            return self.transfer_internet_per_gb
        if bucket_region is not None and reader_region == bucket_region:
            return 0.0
        return self.transfer_inter_region_per_gb


@dataclass
class BucketPlan:
    """Requests and bytes to one bucket (or host), and whether the reader pays for them."""

    name: str
    region: str | None
    requester_pays: bool
    files: int = 0
    requests: int = 0
    bytes: int = 0


@dataclass
class ReadPlan:
    """What a read will do, counted without doing it.

    ``requests`` and ``bytes`` are the range requests after coalescing and the bytes they
    ask for (retries not included); ``tiles`` the tiles fetched (sparse tiles cost nothing).
    """

    read: str
    scenes: int = 0
    windows: int = 0
    files: int = 0
    tiles: int = 0
    requests: int = 0
    bytes: int = 0
    header_requests: int = 0
    reader_region: str | None = None
    prices: Prices = field(default_factory=Prices)
    buckets: dict[str, BucketPlan] = field(default_factory=dict)

    # --- price ---------------------------------------------------------------------------
    @property
    def requester_pays_requests(self) -> int:
        return sum(b.requests for b in self.buckets.values() if b.requester_pays)

    @property
    def requester_pays_bytes(self) -> int:
        return sum(b.bytes for b in self.buckets.values() if b.requester_pays)

    @property
    def request_cost_usd(self) -> float:
        return self.requester_pays_requests * self.prices.get_per_1000 / 1000

    @property
    def transfer_cost_usd(self) -> float:
        return sum(
            b.bytes / GIB * self.prices.transfer_per_gb(b.region, self.reader_region)
            for b in self.buckets.values() if b.requester_pays
        )

    @property
    def price_usd(self) -> float:
        """What the reader is billed: GETs plus transfer, on requester-pays buckets only."""
        return self.request_cost_usd + self.transfer_cost_usd

    # --- combining and reporting ---------------------------------------------------------
    def add(self, other: "ReadPlan") -> "ReadPlan":
        """Add ``other``'s counts (another run of a backfill) to this plan; returns self."""
        for name in ("scenes", "windows", "files", "tiles", "requests", "bytes", "header_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, b in other.buckets.items():
            mine = self.buckets.setdefault(key, BucketPlan(b.name, b.region, b.requester_pays))
            mine.files += b.files
            mine.requests += b.requests
            mine.bytes += b.bytes
        return self

    def compare(self, stats: ReadStats) -> dict[str, tuple[float, float]]:
        """``{figure: (planned, actual)}`` for a read's ``ReadStats`` (price from the actual counts)."""
        share_requests = self.requester_pays_requests / self.requests if self.requests else 0.0
        share_bytes = self.requester_pays_bytes / self.bytes if self.bytes else 0.0
        per_byte = self.transfer_cost_usd / self.requester_pays_bytes if self.requester_pays_bytes else 0.0
        actual_price = (stats.requests * share_requests * self.prices.get_per_1000 / 1000
                        + stats.bytes_fetched * share_bytes * per_byte)
        return {
            "requests": (self.requests, stats.requests),
            "bytes": (self.bytes, stats.bytes_fetched),
            "tiles": (self.tiles, stats.tiles_read),
            "header_requests": (self.header_requests, stats.header_requests),
            "price_usd": (self.price_usd, actual_price),
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the counts, the price and its parts, the prices used, per bucket."""
        return {
            "read": self.read, "scenes": self.scenes, "windows": self.windows, "files": self.files,
            "tiles": self.tiles, "requests": self.requests, "bytes": self.bytes,
            "header_requests": self.header_requests,
            "requester_pays_requests": self.requester_pays_requests,
            "requester_pays_bytes": self.requester_pays_bytes,
            "request_cost_usd": self.request_cost_usd, "transfer_cost_usd": self.transfer_cost_usd,
            "price_usd": self.price_usd, "reader_region": self.reader_region, "prices": asdict(self.prices),
            "buckets": {k: asdict(b) for k, b in sorted(self.buckets.items())},
        }

    def summary(self) -> str:
        """A few lines for people: counts, then the price and what it assumes."""
        where = "outside AWS" if self.reader_region is None else f"in {self.reader_region}"
        lines = [
            f"{self.read}: {self.scenes} scenes, {self.windows} windows, {self.files} files, {self.tiles} tiles",
            f"{self.requests} requests ({self.header_requests} for headers), {_size(self.bytes)}",
        ]
        if self.requester_pays_requests:
            lines.append(
                f"requester pays: {self.requester_pays_requests} GETs ${self.request_cost_usd:.6f}"
                f" + {_size(self.requester_pays_bytes)} transfer to a reader {where} ${self.transfer_cost_usd:.6f}"
                f" = ${self.price_usd:.6f} (AWS list prices of {self.prices.as_of})"
            )
        else:
            lines.append("price to the reader: $0 (no requester-pays bucket)")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit, div in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n} bytes"


def plan_window_batches(
    batches: Iterable[list[tuple[CogHeader, Any]]], options: ReaderOptions, *, read: str = "read_windows",
    scenes: int = 0, reader_region: str | None = None, prices: Prices | None = None,
) -> ReadPlan:
    """Plan reads made as one ``read_windows`` call per batch of ``(header, window)`` pairs.

    Tiles are deduplicated and coalesced within a call, as the reader does; a tile needed by
    two calls is fetched twice.
    """
    plan = ReadPlan(read, scenes=scenes, reader_region=reader_region, prices=prices or Prices())
    for batch in batches:
        plan.windows += len(batch)
        for fr in plan_requests(batch, options):
            _count_file(plan, fr, options)
    return plan


def _count_file(plan: ReadPlan, fr: FileRequests, options: ReaderOptions) -> None:
    loc = resolve(fr.header.url, endpoint_url=options.endpoint_url, region=options.region,
                  azure_endpoint_url=options.azure_endpoint_url)
    if loc.s3_bucket is not None:
        key, region, pays = f"s3://{loc.s3_bucket}", loc.s3_region, options.requester_pays
    elif loc.kind == "http":
        key, region, pays = urlsplit(loc.http_url).netloc, None, False
    else:
        key, region, pays = "local files", None, False
    bucket = plan.buckets.setdefault(key, BucketPlan(key, region, pays))
    bucket.files += 1
    bucket.requests += len(fr.merged)
    bucket.bytes += fr.bytes
    plan.files += 1
    plan.tiles += sum(len(tiles) for tiles in fr.ranges.values())
    plan.requests += len(fr.merged)
    plan.bytes += fr.bytes


def plan_aoi_read(
    scenes: Iterable[Scene], geometries: Mapping[str, Any], bands: list[str], *,
    reader_options: ReaderOptions | None = None, batch_size: int = 64, read: str = "get_xarray",
    reader_region: str | None = None, prices: Prices | None = None,
) -> ReadPlan:
    """The plan of :func:`rasteret_core.read.aoi.read_aois` with the same arguments."""

    scenes = list(scenes)
    jobs = read_jobs(scenes, geometries, bands, AoiReadResult())
    batches = ([(j.scene.bands[j.band].header, j.crop.window) for j in batch] for batch in job_batches(jobs, batch_size))
    return plan_window_batches(batches, reader_options or ReaderOptions(), read=read, scenes=len(scenes),
                               reader_region=reader_region, prices=prices)


def plan_point_samples(
    scenes: Iterable[Scene], points: Any, bands: list[str], *, max_distance: float | None = None,
    neighbourhood: int = 1, crs: str | None = None, reader_options: ReaderOptions | None = None,
    batch_windows: int = 50_000, reader_region: str | None = None, prices: Prices | None = None,
) -> ReadPlan:
    """The plan of :func:`rasteret_core.read.points.sample_points` with the same arguments."""
    import numpy as np


    scenes = list(scenes)
    lonlat = np.array(list(named_points(points, crs).values()), dtype=np.float64).reshape(-1, 2)
    jobs = plan_point_windows(scenes, lonlat, bands, neighbourhood=neighbourhood, max_distance=max_distance)
    batches = ([(j.scene.bands[j.band].header, j.window) for j in batch] for batch in point_batches(jobs, batch_windows))
    return plan_window_batches(batches, reader_options or ReaderOptions(), read="sample_points", scenes=len(scenes),
                               reader_region=reader_region, prices=prices)


def plan_load(ds: Any, *, reader_region: str | None = None, prices: Prices | None = None) -> ReadPlan:
    """The plan of computing a lazy :func:`rasteret_core.load.load` Dataset (or a slice of it).

    Each chunk task reads its tiles in one ``read_windows`` call; a tile already fetched by an
    earlier task comes from the worker's tile cache. The plan walks the tasks in graph order
    with that rule, so tiles and bytes are exact while the cache holds the read, and requests
    are exact for loads whose chunks share no tile (otherwise the merges depend on the order
    the scheduler runs the chunks in).
    """

    plan = ReadPlan("load", reader_region=reader_region, prices=prices or Prices())
    seen: set[tuple[str, int, int]] = set()
    scenes: set[str] = set()
    for task in chunk_tasks(ds).values():
        batch = []
        for src in task.sources:
            scenes.add(src.scene_id)
            for tile in src.tiles:
                key = (src.header.url, src.header.ifd_offset, tile)
                if key not in seen:
                    seen.add(key)
                    batch.append((src.header, tile_window(src.header, tile)))
        if batch:
            part = plan_window_batches([batch], task.options, read="load", reader_region=reader_region, prices=prices)
            plan.add(part)
    plan.scenes = len(scenes)
    return plan


def plan_backfill(
    collection: Any, aois: Mapping[str, Any], dates: Iterable[Any], bands: list[str], *,
    reader_options: ReaderOptions | None = None, reader_region: str | None = None, prices: Prices | None = None,
) -> ReadPlan:
    """The plan of an NDVI backfill: one AOI read per (date, AOI) partition, each its own run.

    ``collection`` is a :class:`~rasteret_core.collection.Collection` holding the dates;
    ``bands`` the red, NIR and mask bands the NDVI asset reads. Runs share no tiles.
    """
    total = ReadPlan("ndvi backfill", reader_region=reader_region, prices=prices or Prices())
    for day in dates:
        scenes = collection.scenes(date_range=(day, day), bands=bands)
        for aoi, geom in aois.items():
            total.add(plan_aoi_read(scenes, {aoi: geom}, bands, reader_options=reader_options,
                                    reader_region=reader_region, prices=prices))
    return total
