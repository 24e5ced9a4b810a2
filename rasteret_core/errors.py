"""Every error and warning rasteret raises on purpose, in one place.

Each error derives from :class:`RasteretError` and each warning from :class:`RasteretWarning`,
so callers can catch the library's failures without catching unrelated bugs. Argument errors
also derive from ``ValueError`` (storage errors from ``OSError``, and so on), so existing
``except ValueError`` handlers keep working. The classes are grouped in data-flow order:
STAC input, COG headers and reads, collections and storage, pixel-grid rules, reads and
loads, products. This module imports only the standard library and :mod:`rasteret_core.redact`.
"""

from __future__ import annotations

from typing import Any

from rasteret_core.redact import redact_url


class RasteretError(Exception):
    """Base class of every error rasteret raises on purpose."""


class RasteretWarning(UserWarning):
    """Base class of rasteret's warnings."""


class ArgumentError(RasteretError, ValueError):
    """An argument no call could honour (NaN, a negative cloud cover, a zero resolution, ...).
    Also a ``ValueError``, so existing ``except ValueError`` handlers keep working."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of a type the call does not take (also a ``TypeError``)."""


# --- The input: STAC items and searches --------------------------------------------------------------


class StacSearchError(RasteretError):
    """The STAC API could not be searched (network failure, error status, bad answer)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"STAC search at {endpoint} failed: {reason}")

    def __reduce__(self):
        return (self.__class__, (self.endpoint, self.reason))


class InvalidItemError(RasteretError):
    """A STAC item rasteret cannot use; names the item and the offending field."""

    def __init__(self, item_id: str, field: str, reason: str) -> None:
        self.item_id, self.field, self.reason = item_id, field, reason
        super().__init__(f"item {item_id!r}: {field}: {reason}")

    def __reduce__(self):
        return (self.__class__, (self.item_id, self.field, self.reason))


class ItemsFileError(RasteretError):
    """A local items file is missing or cannot be parsed as STAC items."""


# --- COG headers and tile reads (every message names the credential-free URL and the reason) ---------


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


class StoredHeaderError(InvalidTiffError):
    """A header stored in a collection is inconsistent (offset lists that do not match the tile
    grid, impossible sizes, an unknown dtype or codec, a transform that cannot be inverted),
    or its URL is not the location its item names. Raised before anything is fetched."""


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


class LocationError(FetchError):
    """The location may not be read or signed: unsupported scheme, invalid S3 bucket name,
    a local path outside the allowed folders, a redirect to another host, or a stored URL
    whose signature was removed and that needs re-signing."""


class SigningError(FetchError):
    """A token could not be obtained (endpoint down, refused, or an answer without a token);
    the message names the token endpoint and the reason."""


class LimitError(CogError):
    """A configured bound would be exceeded: tile byte count, decoded tile size, window
    pixels, response length. Raised before the memory is allocated."""


class CredentialsError(CogError):
    """Signed access was requested but no AWS credentials were found."""


class StaleHeaderError(CogError):
    """The file changed since its header was read: its validator (ETag, Last-Modified and
    size, or a local file's size and mtime) no longer matches, so the stored tile offsets
    describe another file. Never retried and never decoded; refresh the collection."""


# --- Collections and storage -------------------------------------------------------------------------


class CollectionError(RasteretError):
    """A collection could not be opened, read or written."""


class CollectionExistsError(RasteretError, FileExistsError):
    """A collection is already stored there and neither overwrite nor refresh was asked."""


class BuildError(RasteretError):
    """A build found items but could read none of their COG headers; nothing was written.

    ``report`` holds the search, every failed asset and the I/O counts.
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class StorageError(RasteretError, OSError):
    """A write to storage failed (disk full, permissions, network); names the target path.
    Nothing was changed: the previous file, if any, is intact."""


class WriteConflictError(StorageError):
    """Other writers kept changing the file: the update was not applied (nothing was lost)."""


class UnsafePathError(RasteretError, ValueError):
    """A path built from names would leave its root (or a name cannot be used at all)."""


# --- Pixel-grid rules and arguments ------------------------------------------------------------------


class GridError(RasteretError, ValueError):
    """The arguments do not describe one output grid (or describe several)."""


class GeometryError(RasteretError, ValueError):
    """An AOI that cannot be read: not a polygon, invalid, or empty."""


class MemoryBudgetError(RasteretError, MemoryError):
    """An eager result would exceed the memory budget; nothing was allocated."""


# --- Reads and loads ---------------------------------------------------------------------------------


class ReadError(RasteretError):
    """Every read of a query failed; ``diagnosis`` holds every failure with its cause."""

    def __init__(self, message: str, diagnosis: Any) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


class EmptyResultError(RasteretError, LookupError):
    """A form that cannot be empty (the stacked Dataset) had nothing to hold."""

    def __init__(self, message: str, diagnosis: Any) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


class OutsideDatasetError(RasteretError, IndexError):
    """A dataset was asked for a place or a time it does not cover (an ``IndexError``, as a
    dataset's ``__getitem__`` protocol expects)."""


class LoadError(RasteretError):
    """A load's arguments are inconsistent, or it selects nothing (the message says which step)."""


# --- Products ----------------------------------------------------------------------------------------


class AoiError(RasteretError):
    """The AOI file cannot be used: unreadable, unnamed, duplicate or invalid geometries."""


class ChartError(RasteretError, ValueError):
    """A chart cannot be drawn from the table given (no such AOI, no rows)."""


# --- Warnings ----------------------------------------------------------------------------------------


class EmptyResultWarning(RasteretWarning):
    """A read returned nothing; the message says which step emptied it."""


class PartialReadWarning(RasteretWarning):
    """Some reads failed; the message names the first causes."""


class MissingBandWarning(RasteretWarning):
    """A requested band is stored for none of the scenes that were read."""


class RadiometryWarning(RasteretWarning):
    """Values read look implausible for their radiometry rule (see :func:`check_plausible`)."""
