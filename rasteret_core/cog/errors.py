"""Errors of the COG layer. Every message names the (credential-free) URL and the reason."""

from __future__ import annotations

from rasteret_core.errors import RasteretError
from rasteret_core.cog.urls import redact_url


class CogError(RasteretError):
    """Anything that went wrong reading a COG: bad bytes, bad codec, bad network."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"{self.url}: {reason}")

    def __reduce__(self):  # picklable across processes (Dagster, executors)
        return (self.__class__, (self.url, self.reason))


class NotATiffError(CogError):
    """The bytes do not start with a TIFF or BigTIFF signature."""


class TruncatedHeaderError(CogError):
    """The header points past the end of the file."""


class InvalidTiffError(CogError):
    """The TIFF structure is inconsistent (lying counts, IFD loops, impossible sizes)."""


class UnsupportedTiffError(CogError):
    """A valid TIFF using a feature rasteret does not read (e.g. 1-bit samples)."""


class UnsupportedCodecError(UnsupportedTiffError):
    """The compression scheme is not one imagecodecs can decode here."""


class DecodeError(CogError):
    """A tile failed to decode or decoded to the wrong size."""


class WindowError(CogError):
    """The requested window does not lie inside the image."""


class FetchError(CogError):
    """A request failed after its retries (timeout, reset connection, DNS, ...)."""


class HttpStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, url: str, reason: str, status: int = 0) -> None:
        self.status = status
        super().__init__(url, reason)

    def __reduce__(self):
        return (self.__class__, (self.url, self.reason, self.status))


class ShortReadError(FetchError):
    """The server returned other bytes than the range asked for."""


class LimitError(CogError):
    """A configured bound would be exceeded: tile byte count, decoded tile size, window
    pixels, response length. Raised before the memory is allocated."""


class LocationError(FetchError):
    """The location may not be read or signed: unsupported scheme, invalid S3 bucket name,
    a local path outside the allowed folders, a redirect to another host, or a stored URL
    whose signature was removed and that needs re-signing."""


class CredentialsError(CogError):
    """Signed access was requested but no AWS credentials were found."""


class StaleHeaderError(CogError):
    """The file changed since its header was read: its validator (ETag, Last-Modified and
    size, or a local file's size and mtime) no longer matches, so the stored tile offsets
    describe another file. Never retried and never decoded; refresh the collection."""


class StoredHeaderError(InvalidTiffError):
    """A header stored in a collection is inconsistent (offset lists that do not match the tile
    grid, impossible sizes, an unknown dtype or codec, a transform that cannot be inverted),
    or its URL is not the location its item names. Raised before anything is fetched."""
