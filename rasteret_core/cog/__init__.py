"""The COG engine: parse a GeoTIFF header once, then read pixel windows with range requests.

    >>> from rasteret_core.cog import read_header, read_window
    >>> from rasterio.windows import Window
    >>> header = read_header("s3://sentinel-cogs/sentinel-s2-l2a-cogs/.../B04.tif")  # 1 request
    >>> pixels = read_window(header, Window(0, 0, 512, 512))  # only the intersecting tiles

Headers are plain values (:class:`CogHeader`) that serialise to JSON or Arrow, so a stored
header lets later reads skip the header request entirely.
"""

from rasteret_core.cog.header import CogHeader
from rasteret_core.cog.options import ReaderOptions, ReadStats
from rasteret_core.cog.tile_cache import TileCache
from rasteret_core.cog.urls import s3_endpoint_from_env
from rasteret_core.cog.reader import (
    aread_header, aread_windows, CogClient, read_header, read_window, read_windows,
)
from rasteret_core.errors import (
    CogError, CredentialsError, DecodeError, FetchError, HttpStatusError, InvalidTiffError, LimitError,
    LocationError, NotATiffError, ShortReadError, StaleHeaderError, StoredHeaderError, TruncatedHeaderError,
    UnsupportedCodecError, UnsupportedTiffError, WindowError,
)

__all__ = [
    "CogClient", "CogHeader", "ReaderOptions", "ReadStats", "TileCache",
    "read_header", "aread_header", "read_window", "read_windows", "aread_windows", "s3_endpoint_from_env",
    "CogError", "NotATiffError", "TruncatedHeaderError", "InvalidTiffError", "UnsupportedTiffError",
    "UnsupportedCodecError", "DecodeError", "WindowError", "FetchError", "HttpStatusError",
    "ShortReadError", "CredentialsError", "LocationError", "LimitError", "StaleHeaderError", "StoredHeaderError",
]
