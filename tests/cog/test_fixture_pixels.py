"""Every real-world fixture TIFF reads value for value like rasterio/GDAL (local files)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rasteret_core.cog import ReadStats, read_header, read_window

from ._shared import fixture_id, fixture_tiffs

TIFFS = fixture_tiffs()
pytestmark = pytest.mark.skipif(not TIFFS, reason="shared fixtures folder not found")


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path)


def assert_pixels_match(ours: np.ndarray, theirs: np.ndarray, compression: int, photometric: int = 6) -> None:
    """Equal values, except YCbCr JPEG: libjpeg-turbo (imagecodecs) and GDAL's libjpeg upsample
    subsampled chroma differently, so RGB values differ a little (see docs: reader fidelity)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if compression == 7 and photometric == 6:
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        assert diff.max() <= JPEG_MAX_DIFF and diff.mean() < JPEG_MEAN_DIFF
    else:
        np.testing.assert_array_equal(ours, theirs)


# Measured on the generated and fixture YCbCr JPEGs and their overviews: max 18, mean up to
# 0.69 on images of 75+ pixels (docs/reader-fidelity.md)
JPEG_MAX_DIFF = 24
JPEG_MEAN_DIFF = 1.0


def windows_for(height: int, width: int, tile_h: int, tile_w: int) -> dict[str, Window]:
    """Windows inside one tile, across a tile corner, at the ragged edge, and the whole image."""
    cases = {"whole": Window(0, 0, width, height)}
    cases["inside_one_tile"] = Window(min(3, width - 1), min(2, height - 1), max(1, min(tile_w, width) // 3), max(1, min(tile_h, height) // 3))
    if width > tile_w and height > tile_h:
        cases["tile_corner"] = Window(tile_w - 5, tile_h - 7, min(13, width - tile_w + 5), min(11, height - tile_h + 7))
    cases["ragged_edge"] = Window(max(0, width - 17), max(0, height - 9), min(17, width), min(9, height))
    return cases


@pytest.mark.parametrize("path", TIFFS, ids=[fixture_id(p) for p in TIFFS])
def test_header_matches_rasterio(path):
    header = read_header(path)
    with _open(path) as src:
        assert (header.height, header.width) == (src.height, src.width)
        assert header.count == src.count
        assert header.dtype == np.dtype(src.dtypes[0])
        assert header.transform == pytest.approx(tuple(src.transform)[:6])
        if src.nodata is None:
            assert header.nodata is None
        else:
            assert header.nodata == pytest.approx(src.nodata, nan_ok=True)
        if src.crs is not None and src.crs.to_epsg() is not None:
            assert header.crs_epsg == src.crs.to_epsg()
        if header.is_tiled:
            assert src.block_shapes[0] == (header.tile_height, header.tile_width)
        assert len(header.overviews) == len(src.overviews(1))
        assert [o.width for o in header.overviews] == [src.width // f if src.width % f == 0 else o.width for f, o in zip(src.overviews(1), header.overviews)]


@pytest.mark.parametrize("path", TIFFS, ids=[fixture_id(p) for p in TIFFS])
def test_windows_match_rasterio(path):
    header = read_header(path)
    with _open(path) as src:
        for name, window in windows_for(header.height, header.width, header.tile_height, header.tile_width).items():
            ours = read_window(header, window)
            assert_pixels_match(ours, src.read(window=window), header.compression, header.photometric)


@pytest.mark.parametrize("path", [p for p in TIFFS], ids=[fixture_id(p) for p in TIFFS])
def test_overviews_match_rasterio(path):
    header = read_header(path)
    for level, overview in enumerate(header.overviews):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path, overview_level=level) as src:
                assert (src.height, src.width) == (overview.height, overview.width)
                assert overview.transform == pytest.approx(tuple(src.transform)[:6])
                assert_pixels_match(read_window(header, None, overview=level), src.read(), header.compression, header.photometric)


@pytest.mark.parametrize("path", TIFFS, ids=[fixture_id(p) for p in TIFFS])
def test_local_header_reads_cost_one_request_for_cogs(path):
    stats = ReadStats()
    header = read_header(path, stats=stats)
    # GDAL-written COGs keep every IFD in the first 64 KiB: one read
    if header.is_tiled and header.tile_offsets.min() < 65536 * 4:
        assert stats.header_requests == 1
    assert stats.requests == stats.header_requests >= 1


def test_internal_mask_is_described():
    path = next(p for p in TIFFS if p.name == "cog_rgb_mask.tif")
    header = read_header(path)
    assert header.mask is not None
    assert (header.mask.width, header.mask.height) == (header.width, header.height)
    with _open(path) as src:
        mask = read_window(header.mask, None)[0]
        np.testing.assert_array_equal(mask.astype(bool), src.read_masks(1) > 0)
