"""Reader settings and the request/byte counters every read can report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from rasteret_core.errors import ArgumentError, ArgumentTypeError
from rasteret_core.cog.tile_cache import TileCache
from rasteret_core.cog.urls import ALL_SCHEMES, Signer


@dataclass(frozen=True)
class ReaderOptions:
    """How the COG reader talks to storage. Every field can be passed as a keyword option.

    Credentials given here override the standard AWS chain; they are kept out of ``repr``.
    """

    prefetch: int = 64 * 1024
    """Bytes read by the single header request; GDAL COG headers fit in it."""
    max_concurrency: int = 64
    """Requests in flight at once, over all files (one shared connection pool)."""
    connect_burst: int = 2
    """New connections opened at once before pacing starts (kept below small accept queues)."""
    connect_interval: float = 0.003
    """Seconds between further new connections. A burst of dozens of connects overflows a
    server's accept queue (Python's default backlog is 5) and each overflowed connect waits
    for TCP's 1 s / 3 s SYN retransmit; pacing fills the pool within ~0.1 s instead. Open
    connections are reused (keep-alive); 0 disables pacing."""
    coalesce_gap: int = 64 * 1024
    """Merge two ranges of a file when at most this many bytes lie between them."""
    max_coalesced_bytes: int = 4 * 1024 * 1024
    """Never merge ranges into a request larger than this (keeps requests parallel, and many
    of them fit in the in-flight budget)."""
    max_inflight_bytes: int = 64 * 1024 * 1024
    """Tile bytes requested but not yet decoded, over all requests of a read: bounds memory
    for reads of many scenes, while keeping enough in flight to hide the latency."""
    retries: int = 5
    """Retries after the first attempt, on 429/5xx, timeouts, resets and short reads."""
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    retry_after_max: float = 30.0
    timeout: float = 30.0
    """Seconds allowed for one request, headers and body."""
    connect_timeout: float = 10.0
    endpoint_url: str | None = None
    """S3-compatible endpoint for s3:// URLs (default: AWS_ENDPOINT_URL, else AWS)."""
    region: str | None = None
    requester_pays: bool = False
    """Send ``x-amz-request-payer: requester`` (and sign) for s3:// URLs."""
    sign: bool | None = None
    """Sign s3:// requests with SigV4; ``None`` signs only when ``requester_pays``."""
    decode_threads: int | None = None
    max_header_bytes: int = 16 * 1024 * 1024
    max_header_requests: int = 8
    header_deadline: float = 60.0
    """Seconds one header may take, all its requests and retries together (``timeout`` bounds
    each request): a header needing 8 requests each answered only on its last retry took 34.5 s
    at a 0.5 s timeout, which would be about 18 minutes at the default timeout."""
    local_roots: tuple[str, ...] | None = None
    """Folders local paths must lie in (``None``: any path; ``()``: no local files at all)."""
    cmyk: str = "rgba"
    """8-bit CMYK (Photometric=Separated) files: ``"rgba"`` converts to 4 RGBA bands as GDAL
    does, ``"raw"`` returns the ink samples as stored (GDAL's ``GTIFF_RAW:`` prefix)."""
    allowed_schemes: tuple[str, ...] | None = None
    """Schemes that may be read, among ``http``, ``https``, ``s3`` and ``file`` (``None``: all).
    Hrefs from a remote STAC API are read with ``("http", "https", "s3")``."""
    max_redirects: int = 5
    """Redirects followed for unsigned HTTP(S) reads, to the same scheme, host and port only;
    signed requests never follow one."""
    max_tile_bytes: int = 16 * 1024 * 1024
    """Largest tile (or strip) read, both as stored (its byte count) and decoded (its declared
    size): a larger one is a ``LimitError`` before anything is fetched or allocated. A 2048 x
    2048 float32 tile is 16 MiB."""
    max_window_pixels: int = 2**27
    """Largest window read, in pixels (width x height): a 10980 x 10980 Sentinel-2 band fits.
    A larger one is a ``LimitError`` before its array (or AOI mask) is allocated."""
    azure_endpoint_url: str | None = None
    """Path-style Blob endpoint (an emulator, a mirror) for ``https://*.blob.core.windows.net`` URLs."""
    tile_cache: TileCache | None = None
    """Keep fetched tile bytes on local disk and read them from there next time, in this
    process or another on the machine (a :class:`~rasteret_core.cog.tile_cache.TileCache`, or
    its folder as a path). ``None``: every read fetches."""
    signer: Signer | None = field(default=None, repr=False, compare=False)
    """Read-time signing hook for http(s) assets (see :data:`rasteret_core.cog.urls.Signer`):
    called with the stored URL before each request, returns the URL to fetch (same origin),
    e.g. with a fresh SAS token. Without one, a stored URL whose signature was redacted fails
    with a ``LocationError`` saying it needs re-signing."""
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("prefetch", "max_concurrency", "max_header_requests", "max_inflight_bytes", "max_tile_bytes",
                     "max_window_pixels"):
            if getattr(self, name) < 1:
                raise ArgumentError(f"{name} must be >= 1")
        if self.cmyk not in ("rgba", "raw"):
            raise ArgumentError(f"cmyk must be 'rgba' or 'raw', not {self.cmyk!r}")
        if self.connect_burst < 1 or self.connect_interval < 0:
            raise ArgumentError("connect_burst must be >= 1 and connect_interval >= 0")
        if self.retries < 0 or self.coalesce_gap < 0 or self.timeout <= 0 or not self.header_deadline > 0:
            raise ArgumentError("retries and coalesce_gap must be >= 0, timeout and header_deadline > 0")
        if self.allowed_schemes is not None:
            object.__setattr__(self, "allowed_schemes", tuple(s.lower() for s in self.allowed_schemes))
            unknown = set(self.allowed_schemes) - set(ALL_SCHEMES)
            if unknown:
                raise ArgumentError(f"allowed_schemes: unknown scheme(s) {sorted(unknown)}; use {ALL_SCHEMES}")
        if self.tile_cache is not None and not isinstance(self.tile_cache, TileCache):
            if not isinstance(self.tile_cache, (str, os.PathLike)):
                raise ArgumentTypeError(f"tile_cache must be a TileCache or a folder, not {type(self.tile_cache).__name__}")
            object.__setattr__(self, "tile_cache", TileCache(self.tile_cache))
        if self.local_roots is not None and not isinstance(self.local_roots, tuple):
            object.__setattr__(self, "local_roots", tuple(str(r) for r in self.local_roots))

    @property
    def signs_s3(self) -> bool:
        return self.requester_pays if self.sign is None else self.sign

    def credential_fields(self) -> list[str]:
        """The names of the credential fields that are set. Work sent to other processes or
        machines (a dask graph, a worker's task) must carry none: workers sign with their own
        AWS chain (environment, profile, instance role)."""
        return [name for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
                if getattr(self, name)]

    @classmethod
    def coerce(cls, value: "ReaderOptions | Mapping[str, Any] | None") -> "ReaderOptions":
        """``value`` as options: ``None`` gives the defaults, a mapping goes through :meth:`from_kwargs`."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        return cls.from_kwargs(dict(value))

    @classmethod
    def from_kwargs(cls, options: dict) -> "ReaderOptions":
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ArgumentTypeError(f"unknown reader option(s): {', '.join(sorted(unknown))}")
        return cls(**options)


@dataclass
class ReadStats:
    """Counters of one or more reads: pass the same instance to accumulate."""

    requests: int = 0
    header_requests: int = 0
    bytes_fetched: int = 0
    bytes_wasted: int = 0
    """Bytes fetched but not needed (gaps bridged by coalescing, whole-object answers)."""
    retries: int = 0
    tiles_read: int = 0
    tiles_from_cache: int = 0
    """Tiles decoded from the reader's tile cache instead of fetched (not in ``tiles_read``)."""
    redirects: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def add(self, other: "ReadStats") -> "ReadStats":
        """Add ``other``'s counters to these (another read, process or date); returns self."""
        for name, value in other.as_dict().items():
            setattr(self, name, getattr(self, name) + value)
        return self
