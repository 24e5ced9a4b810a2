"""Named types for what is passed around, and the one check of a band list.

A leaf module (standard library only): every step may use it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Literal, Sequence, Union

from rasteret_core.errors import ArgumentError

BBox = tuple[float, float, float, float]
"""``(west, south, east, north)``, in lon/lat unless a CRS says otherwise."""

DateLike = Union[str, dt.date, dt.datetime]
DateRange = tuple[DateLike, DateLike]
"""Inclusive ``(start, end)`` dates (UTC); strings are ISO 8601."""

Bands = Union[str, Sequence[str]]
"""One band code (``"B04"``) or several (``["B04", "B08"]``)."""

ResamplingName = Literal["nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                         "min", "max", "med", "q1", "q3", "sum", "rms"]
"""A ``rasterio.enums.Resampling`` member's name, as ``load(resampling=...)`` takes it."""


def band_list(bands: Any) -> list[str]:
    """``bands`` as a list of distinct codes in order: one code as a string is one band (not its
    characters).

    Raises:
        ArgumentError: no bands, or something other than strings.
    """
    if isinstance(bands, str):
        bands = [bands]
    try:
        out = list(bands)
    except TypeError:
        raise ArgumentError(f"bands must be a band code or a list of them, not {type(bands).__name__}") from None
    if not out:
        raise ArgumentError("no bands requested")
    bad = [b for b in out if not isinstance(b, str)]
    if bad:
        raise ArgumentError(f"band codes must be strings, got {bad[:3]!r}")
    return list(dict.fromkeys(out))


def known_bands(bands: Any, known: Iterable[str], owner: str, listed_as: str = "known") -> list[str]:
    """:func:`band_list` of ``bands``, each of them one of ``known``.

    Raises:
        ArgumentError: as :func:`band_list`, or naming the unknown codes, ``owner`` (for
            example ``collection 'x'``) and the ``known`` ones.
    """
    codes = band_list(bands)
    known = list(known)
    unknown = [b for b in codes if b not in known]
    if unknown:
        raise ArgumentError(f"unknown band code(s) {', '.join(map(repr, unknown))} for {owner};"
                            f" {listed_as}: {', '.join(known) or 'none'}")
    return codes
