"""Checks for headers that did not come from rasteret's own parser: a header read back from a
stored collection (a teammate's, one on a shared bucket) is third-party input.

The parser (:func:`rasteret_core.cog.header.build_header`) checks every field as it reads a
file. A stored header skips the parser, so :func:`stored_header` rebuilds it from its row and
applies the same rules before anything is fetched or allocated: sizes within the parser's
bounds, offset and byte-count lists matching the tile grid, no negative offsets, a known
dtype, codec and predictor, and a finite, invertible transform. Anything else is a
:class:`StoredHeaderError` naming the scene, band and reason, never a bare Python error.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from rasteret_core.cog.codecs import check_supported
from rasteret_core.cog.header import _DTYPES, CogHeader, MAX_DIMENSION, MAX_TILE_BYTES
from rasteret_core.errors import CogError, StoredHeaderError

_KNOWN_DTYPES = frozenset(_DTYPES.values())
_LIST_FIELDS = ("tile_offsets", "tile_byte_counts")


def stored_header(row: Mapping[str, Any], *, scene_id: str, band: str) -> CogHeader:
    """The :class:`CogHeader` of a stored band struct, checked as a parsed one would be.

    Raises:
        StoredHeaderError: the struct is inconsistent; the message names ``scene_id``,
            ``band`` and the reason.
    """
    url = row.get("url") if isinstance(row.get("url"), str) else ""
    where = f"stored header of scene {scene_id!r} band {band!r}"
    try:
        _check_lists(row)
        header = CogHeader.from_arrow_dict(dict(row))
        check_header(header)
    except CogError as exc:
        raise StoredHeaderError(url, f"{where}: {exc.reason}") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, AttributeError) as exc:
        raise StoredHeaderError(url, f"{where}: unreadable field ({type(exc).__name__}: {str(exc)[:120]})") from None
    return header


def check_header(header: CogHeader) -> None:
    """Raise a :class:`CogError` unless ``header``, its overviews and masks are consistent."""
    if not header.url:
        raise StoredHeaderError("", "the header has no URL")
    images = [header, *header.overviews]
    images += [i.mask for i in images if i.mask is not None]
    for image in images:
        _check_image(image)
    check_supported(header)
    if header.byte_order not in ("<", ">"):
        raise StoredHeaderError(header.url, f"unknown byte order {header.byte_order!r}")
    if header.color_conversion not in (None, "cmyk_to_rgba"):
        raise StoredHeaderError(header.url, f"unknown colour conversion {header.color_conversion!r}")


def _check_lists(row: Mapping[str, Any]) -> None:
    """Negative offsets or counts, before numpy turns them into huge unsigned values."""
    images = [row, *(row.get("overviews") or [])]
    images += [i.get("mask") for i in images if isinstance(i, Mapping) and i.get("mask")]
    for image in images:
        if not isinstance(image, Mapping):
            raise StoredHeaderError("", "an overview or mask is not a struct")
        for name in _LIST_FIELDS:
            values = image.get(name)
            if values is None:
                raise StoredHeaderError("", f"{name} is missing")
            if len(values) and min(int(v) for v in values) < 0:
                raise StoredHeaderError("", f"{name} holds a negative value")


def _check_image(h: CogHeader) -> None:
    for name in ("width", "height", "tile_width", "tile_height"):
        value = getattr(h, name)
        if not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_DIMENSION:
            raise StoredHeaderError(h.url, f"{name} {value} is outside 1..{MAX_DIMENSION}")
    if not 1 <= h.samples_per_pixel <= 65535 or h.planar_configuration not in (1, 2):
        raise StoredHeaderError(h.url, f"{h.samples_per_pixel} samples per pixel, planar configuration "
                                       f"{h.planar_configuration}")
    if h.dtype.name not in _KNOWN_DTYPES or not 1 <= h.bits_per_sample <= 64:
        raise StoredHeaderError(h.url, f"dtype {h.dtype} with {h.bits_per_sample}-bit samples is not one the parser makes")
    chunk_samples = 1 if h.planar_configuration == 2 else h.samples_per_pixel
    if h.tile_width * h.tile_height * chunk_samples * h.dtype.itemsize > MAX_TILE_BYTES:
        raise StoredHeaderError(h.url, f"tiles of {h.tile_width} x {h.tile_height} x {chunk_samples} {h.dtype} exceed "
                                       f"{MAX_TILE_BYTES} bytes decoded")
    expected = h.tiles_across * h.tiles_down * h.planes
    if h.tile_offsets.size != expected or h.tile_byte_counts.size != expected:
        raise StoredHeaderError(h.url, f"{h.tile_offsets.size} offsets and {h.tile_byte_counts.size} byte counts for a "
                                       f"grid of {expected} tiles")
    if h.file_size is not None and expected:
        if h.file_size < 0:
            raise StoredHeaderError(h.url, f"negative file size {h.file_size}")
        end = int((h.tile_offsets + h.tile_byte_counts).max())  # both < 2**63 (stored as int64): no overflow
        if end > h.file_size:
            raise StoredHeaderError(h.url, f"tile data ends at byte {end}, past the end of the file ({h.file_size} bytes)")
    a, b, _, d, e, _ = h.transform
    if not all(math.isfinite(v) for v in h.transform) or a * e - b * d == 0:
        raise StoredHeaderError(h.url, f"transform {h.transform} is not finite and invertible")
