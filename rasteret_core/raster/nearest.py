"""Nearest-neighbour source pixels for an output grid, the same for any cut into chunks.

A destination pixel takes the source pixel that contains its centre. The centre is computed
from the *whole* output grid's transform and the pixel's row and column in it (never from a
chunk's own origin), then carried into the source CRS with PROJ's exact point transform and
into source pixels with the image's inverse transform. Each pixel's answer therefore depends
on that pixel alone, so a chunk of any size and offset gets the values the whole grid gets.

GDAL's warper approximates the coordinate transform along each destination row (its
approximate transformer, sized to the rows it is given), so cutting the grid into chunks
changes which source pixel wins near pixel edges; that is why ``load`` picks nearest pixels
here rather than with ``rasterio.warp.reproject`` per chunk.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer


@lru_cache(maxsize=64)
def _crs(text: str) -> CRS:
    return CRS.from_user_input(text)


@lru_cache(maxsize=64)
def _transformer(dst_crs: str, src_crs: str) -> Transformer | None:
    """Destination -> source point transform, or None when the two CRSs are the same."""
    dst, src = _crs(dst_crs), _crs(src_crs)
    if dst == src:
        return None
    return Transformer.from_crs(dst, src, always_xy=True)


def _floor_index(values: np.ndarray, size: int) -> np.ndarray:
    """``floor(values)`` as int64, with -1 for centres outside ``[0, size)`` or not finite."""
    out = np.full(values.shape, -1, dtype=np.int64)
    ok = np.isfinite(values) & (values >= 0) & (values < size)
    out[ok] = np.floor(values[ok]).astype(np.int64)
    return out


def nearest_source_pixels(
    grid_transform: Affine,
    grid_crs: str,
    rows: tuple[int, int],
    cols: tuple[int, int],
    src_transform: Affine,
    src_crs: str,
    src_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Source ``(row, col)`` indexes for the output pixels ``rows`` x ``cols`` of a grid.

    :param grid_transform: the whole output grid's affine transform.
    :param rows: ``(start, stop)`` rows of that grid (a chunk's rows); ``cols`` likewise.
    :param src_transform: the source image's transform (the whole image, not a window).
    :param src_shape: the source image's ``(height, width)``.
    :returns: ``(iy, ix)`` int64 arrays, -1 where a pixel centre falls outside the image. When
        both grids are north-up in one CRS they are 1-D (``iy`` per row, ``ix`` per column: the
        index is separable); otherwise both have the chunk's 2-D shape.
    """
    height, width = src_shape
    r = np.arange(rows[0], rows[1], dtype=np.float64) + 0.5
    c = np.arange(cols[0], cols[1], dtype=np.float64) + 0.5
    g, s = grid_transform, src_transform
    inverse = ~s
    transformer = _transformer(grid_crs, src_crs)
    if transformer is None and g.b == 0 and g.d == 0 and s.b == 0 and s.d == 0:
        x = g.c + c * g.a
        y = g.f + r * g.e
        return _floor_index(inverse.f + y * inverse.e, height), _floor_index(inverse.c + x * inverse.a, width)
    x = g.c + c[None, :] * g.a + r[:, None] * g.b
    y = g.f + c[None, :] * g.d + r[:, None] * g.e
    if transformer is not None:
        x, y = transformer.transform(x, y)
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    px = inverse.c + x * inverse.a + y * inverse.b
    py = inverse.f + x * inverse.d + y * inverse.e
    iy, ix = _floor_index(py, height), _floor_index(px, width)
    outside = (iy < 0) | (ix < 0)
    iy[outside] = -1
    ix[outside] = -1
    return iy, ix


def take_nearest(
    data: np.ndarray,
    window: tuple[int, int, int, int],
    iy: np.ndarray,
    ix: np.ndarray,
    fill,
) -> tuple[np.ndarray, np.ndarray]:
    """The values of ``data`` (the source window ``(row0, row1, col0, col1)``) at ``(iy, ix)``.

    Returns ``(values, inside)``: ``values`` has the output shape with ``fill`` where the pixel
    centre falls outside the window; ``inside`` marks the others.
    """
    r0, r1, c0, c1 = window
    ly = np.where((iy >= r0) & (iy < r1), iy - r0, -1)
    lx = np.where((ix >= c0) & (ix < c1), ix - c0, -1)
    if iy.ndim == 1:  # separable: a row index per row, a column index per column
        inside = (ly >= 0)[:, None] & (lx >= 0)[None, :]
        values = data[np.ix_(np.maximum(ly, 0), np.maximum(lx, 0))]
    else:
        inside = (ly >= 0) & (lx >= 0)
        values = data[np.maximum(ly, 0), np.maximum(lx, 0)]
    if not inside.all():  # fancy indexing made ``values`` a copy: filling it leaves ``data`` alone
        values[~inside] = fill
    return values, inside
