"""GeoTIFF georeferencing: GeoKey directory -> CRS, model tags -> affine transform.

Transforms follow rasterio's ``Affine(a, b, c, d, e, f)`` order:
``x = a*col + b*row + c`` and ``y = d*col + e*row + f`` for the pixel's upper-left corner.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np

from rasteret_core.cog import tiff

KEY_MODEL_TYPE = 1024
KEY_RASTER_TYPE = 1025
KEY_GEOGRAPHIC_TYPE = 2048
KEY_GEOG_GEODETIC_DATUM = 2050
KEY_GEOG_ANGULAR_UNITS = 2054
KEY_PROJECTED_TYPE = 3072

RASTER_PIXEL_IS_POINT = 2
USER_DEFINED = 32767
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def read_geokeys(ifd: tiff.Ifd) -> dict[int, int | float | str | tuple]:
    """Return the GeoKey directory as ``{key_id: value}``; empty when absent or malformed."""
    directory = ifd.array(tiff.TAG_GEO_KEY_DIRECTORY)
    if directory is None or directory.size < 4:
        return {}
    doubles = ifd.array(tiff.TAG_GEO_DOUBLE_PARAMS)
    ascii_params = ifd.text(tiff.TAG_GEO_ASCII_PARAMS) or ""
    n = int(directory[3])
    keys: dict[int, int | float | str | tuple] = {}
    for i in range(min(n, (directory.size - 4) // 4)):
        key, location, count, value = (int(v) for v in directory[4 + 4 * i : 8 + 4 * i])
        if location == 0:
            keys[key] = value
        elif location == tiff.TAG_GEO_DOUBLE_PARAMS and doubles is not None:
            vals = tuple(float(v) for v in doubles[value : value + count])
            keys[key] = vals[0] if len(vals) == 1 else vals
        elif location == tiff.TAG_GEO_ASCII_PARAMS:
            keys[key] = ascii_params[value : value + count].rstrip("|\x00")
    return keys


def crs_epsg(keys: dict) -> int | None:
    """EPSG code of the CRS, when the file names one (not user-defined)."""
    model = keys.get(KEY_MODEL_TYPE)
    projected = keys.get(KEY_PROJECTED_TYPE)
    geographic = keys.get(KEY_GEOGRAPHIC_TYPE)
    if model == 1 and isinstance(projected, int) and 0 < projected < USER_DEFINED:
        return projected
    if model == 2 and isinstance(geographic, int) and 0 < geographic < USER_DEFINED:
        return geographic
    if model == 2 and geographic == USER_DEFINED and keys.get(KEY_GEOG_GEODETIC_DATUM) == 6326:
        # user-defined geographic CRS on the WGS 84 datum in degrees: GDAL reports EPSG:4326
        if keys.get(KEY_GEOG_ANGULAR_UNITS, 9102) == 9102:
            return 4326
    return None


MAX_GEOKEY_VALUES = 8192
# Keys that only describe a CRS already named by its EPSG code: model and raster type,
# citations, and the metre / degree units GDAL writes beside a code
_PLAIN_KEYS = frozenset({KEY_MODEL_TYPE, KEY_RASTER_TYPE, 1026, KEY_GEOGRAPHIC_TYPE, 2049, KEY_PROJECTED_TYPE, 3073})
KEY_PROJ_LINEAR_UNITS = 3076
UNIT_METRE = 9001
UNIT_DEGREE = 9102


def _only_names_a_code(keys: dict) -> bool:
    """True when the keys name an EPSG code and nothing GDAL would apply on top of it."""
    rest = set(keys) - _PLAIN_KEYS
    if KEY_GEOG_ANGULAR_UNITS in rest and keys[KEY_GEOG_ANGULAR_UNITS] == UNIT_DEGREE:
        rest.discard(KEY_GEOG_ANGULAR_UNITS)
    if KEY_PROJ_LINEAR_UNITS in rest and keys[KEY_PROJ_LINEAR_UNITS] == UNIT_METRE \
            and keys.get(KEY_MODEL_TYPE) == 1 and _is_metric_code(keys.get(KEY_PROJECTED_TYPE)):
        rest.discard(KEY_PROJ_LINEAR_UNITS)
    return not rest


def _is_metric_code(code) -> bool:
    """UTM zones (WGS 84, NAD83/ETRS89-style 269xx/258xx) and Web Mercator: metre by definition."""
    if not isinstance(code, int):
        return False
    return 32601 <= code <= 32660 or 32701 <= code <= 32760 or code == 3857 or 26903 <= code <= 26923 \
        or 25828 <= code <= 25838


def crs_of(ifd: tiff.Ifd, keys: dict) -> tuple[int | None, str | None]:
    """``(epsg, wkt)`` of the image's CRS, as GDAL reads it.

    A file that names an EPSG code and nothing more gets ``(code, None)`` without further work.
    Any other GeoKeys (user-defined projections, datums, units, overrides) go through GDAL's
    own GeoTIFF CRS reader (libgeotiff, via rasterio) on a 1 x 1 image carrying the same three
    GeoKey tags: the WKT GDAL builds, and the EPSG code rasterio identifies for it (``None``
    when it identifies none), so the CRS is kept even without a code.
    """
    epsg = crs_epsg(keys)
    if not keys or (epsg is not None and _only_names_a_code(keys)):
        return epsg, None
    directory = ifd.array(tiff.TAG_GEO_KEY_DIRECTORY)
    doubles = ifd.array(tiff.TAG_GEO_DOUBLE_PARAMS)
    ascii_raw = ifd.tags.get(tiff.TAG_GEO_ASCII_PARAMS)
    ascii_raw = ascii_raw if isinstance(ascii_raw, bytes) else b""
    if directory.size > MAX_GEOKEY_VALUES or (doubles is not None and doubles.size > MAX_GEOKEY_VALUES) \
            or len(ascii_raw) > MAX_GEOKEY_VALUES * 8:
        return epsg, None  # no real CRS needs this much; not worth handing to GDAL
    try:
        return _gdal_crs(
            tuple(int(v) for v in directory),
            tuple(float(v) for v in doubles) if doubles is not None else (),
            ascii_raw,
        )
    except Exception:  # GDAL could not make a CRS of these keys: as if it had none
        return None, None


@lru_cache(maxsize=256)
def _gdal_crs(directory: tuple[int, ...], doubles: tuple[float, ...], ascii_params: bytes) -> tuple[int | None, str | None]:
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(_geokey_tiff(directory, doubles, ascii_params)) as mem, mem.open() as src:
            crs = src.crs
    if crs is None or not crs.to_wkt():
        return None, None
    epsg = crs.to_epsg()
    # the code says it all downstream (and keeps stored headers small); WKT only without one
    return epsg, crs.to_wkt() if epsg is None else None


def _geokey_tiff(directory: tuple[int, ...], doubles: tuple[float, ...], ascii_params: bytes) -> bytes:
    """A little-endian 1 x 1 uint8 TIFF holding only the given GeoKey tags."""
    ascii_params = ascii_params if ascii_params.endswith(b"\x00") else ascii_params + b"\x00"
    entries = [
        (256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, None), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1),
        (tiff.TAG_GEO_KEY_DIRECTORY, 3, len(directory), struct.pack(f"<{len(directory)}H", *directory)),
    ]
    if doubles:
        entries.append((tiff.TAG_GEO_DOUBLE_PARAMS, 12, len(doubles), struct.pack(f"<{len(doubles)}d", *doubles)))
    if len(ascii_params) > 1:
        entries.append((tiff.TAG_GEO_ASCII_PARAMS, 2, len(ascii_params), ascii_params))
    ifd_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd_size
    blobs = b""
    body = struct.pack("<H", len(entries))
    pixel_at = None
    for tag, ftype, count, value in entries:
        if isinstance(value, bytes) and len(value) > 4:
            body += struct.pack("<HHII", tag, ftype, count, data_at + len(blobs))
            blobs += value + b"\x00" * (len(value) % 2)
        elif isinstance(value, bytes):
            body += struct.pack("<HHI", tag, ftype, count) + value.ljust(4, b"\x00")
        elif value is None:  # the strip offset: the pixel byte after every blob
            pixel_at = len(body)
            body += struct.pack("<HHII", tag, ftype, count, 0)
        else:
            body += struct.pack("<HHI", tag, ftype, count) + struct.pack("<H", value).ljust(4, b"\x00")
    body += struct.pack("<I", 0)
    pixel = data_at + len(blobs)
    body = body[: pixel_at + 8] + struct.pack("<I", pixel) + body[pixel_at + 12 :]
    return b"II*\x00" + struct.pack("<I", 8) + body + blobs + b"\x00"


def affine_transform(ifd: tiff.Ifd, keys: dict) -> tuple[float, float, float, float, float, float]:
    """The 6-value transform, honouring PixelIsPoint the way GDAL does by default."""
    matrix = ifd.array(tiff.TAG_MODEL_TRANSFORMATION)
    scale = ifd.array(tiff.TAG_MODEL_PIXEL_SCALE)
    tiepoint = ifd.array(tiff.TAG_MODEL_TIEPOINT)
    if matrix is not None and matrix.size >= 16:
        m = [float(v) for v in matrix[:16]]
        a, b, c, d, e, f = m[0], m[1], m[3], m[4], m[5], m[7]
    elif scale is not None and scale.size >= 2 and tiepoint is not None and tiepoint.size >= 6:
        sx, sy = float(scale[0]), float(scale[1])
        i, j, x, y = float(tiepoint[0]), float(tiepoint[1]), float(tiepoint[3]), float(tiepoint[4])
        a, b, c, d, e, f = sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy
    else:
        return IDENTITY
    if keys.get(KEY_RASTER_TYPE) == RASTER_PIXEL_IS_POINT:
        c -= 0.5 * a + 0.5 * b
        f -= 0.5 * d + 0.5 * e
    values = (a, b, c, d, e, f)
    if not all(np.isfinite(values)):
        return IDENTITY
    return values
