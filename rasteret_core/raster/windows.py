"""Tile maths: which pixels of a stored image an AOI covers, exactly as rasterio.mask does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.errors import WindowError
from rasterio.features import geometry_mask, geometry_window
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import CogHeader, LimitError, ReaderOptions
from rasteret_core.errors import WindowError as CogWindowError

DEFAULT_MAX_WINDOW_PIXELS = ReaderOptions.max_window_pixels


@dataclass(frozen=True)
class _Grid:
    """What rasterio's window functions need of a dataset, taken from a stored header."""

    transform: Affine
    width: int
    height: int


@dataclass(frozen=True)
class AoiWindow:
    """The crop of one image for one AOI: window, its transform, and the outside-AOI mask."""

    window: Window
    transform: Affine
    outside: np.ndarray  # True where the pixel centre is outside the AOI

    @property
    def shape(self) -> tuple[int, int]:
        return self.outside.shape


def aoi_window(header: CogHeader, geom: BaseGeometry, *, max_pixels: int = DEFAULT_MAX_WINDOW_PIXELS) -> AoiWindow | None:
    """Crop window and mask of ``geom`` (in the image CRS) over ``header``'s image.

    Same semantics as ``rasterio.mask.mask(src, [geom], crop=True, all_touched=False)``:
    rasterio's own window and mask functions run on the stored transform and size.
    ``None`` when the geometry does not overlap the image.

    Raises:
        LimitError: the window is larger than ``max_pixels`` (width x height), e.g. a header
            with absurdly small pixels; checked before the mask is allocated.
        WindowError: the stored transform cannot place the geometry (zero, NaN or infinite).
    """
    transform = Affine(*header.transform)
    if not all(np.isfinite(v) for v in header.transform) or transform.is_degenerate:
        raise CogWindowError(header.url, f"the image transform {tuple(header.transform)} is not usable")
    grid = _Grid(transform, header.width, header.height)
    try:
        window = geometry_window(grid, [geom])
    except WindowError:
        return None
    except (ValueError, OverflowError, ArithmeticError) as exc:
        raise CogWindowError(header.url, f"cannot place the AOI on the image grid ({exc})") from None
    window = Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    if window.width <= 0 or window.height <= 0:
        return None
    if window.width * window.height > max_pixels:
        raise LimitError(header.url, f"the AOI covers a {window.width} x {window.height} window "
                                     f"({window.width * window.height} pixels), more than max_window_pixels={max_pixels}")
    transform = window_transform(window, grid.transform)
    outside = geometry_mask([geom], transform=transform, out_shape=(window.height, window.width), all_touched=False)
    return AoiWindow(window, transform, outside)


def tiles_of_window(header: CogHeader, window: Window) -> list[tuple[int, int]]:
    """(tile row, tile column) of every tile the window touches."""
    r0, r1 = window.row_off // header.tile_height, (window.row_off + window.height - 1) // header.tile_height
    c0, c1 = window.col_off // header.tile_width, (window.col_off + window.width - 1) // header.tile_width
    return [(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
