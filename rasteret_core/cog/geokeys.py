"""GeoTIFF georeferencing: GeoKey directory -> CRS, model tags -> affine transform.

Transforms follow rasterio's ``Affine(a, b, c, d, e, f)`` order:
``x = a*col + b*row + c`` and ``y = d*col + e*row + f`` for the pixel's upper-left corner.
"""

from __future__ import annotations

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
