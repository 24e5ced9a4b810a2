"""The root of rasteret's exception hierarchy.

Every error raised on purpose by rasteret derives from :class:`RasteretError`, so callers
can catch the library's failures without catching unrelated bugs.
"""

from __future__ import annotations


class RasteretError(Exception):
    """Base class of every error rasteret raises on purpose."""


class ArgumentError(RasteretError, ValueError):
    """An argument no call could honour (NaN, a negative cloud cover, a zero resolution, ...).
    Also a ``ValueError``, so existing ``except ValueError`` handlers keep working."""
