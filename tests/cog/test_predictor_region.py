"""The horizontal predictor is undone only on the rows and columns a window reads: any windows
(alone or several sharing tiles) still equal rasterio's reading of the same file."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings, strategies as st
from rasterio.transform import from_origin
from rasterio.windows import Window

from rasteret_core.cog import read_header, read_windows


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A DEFLATE + predictor 2 COG, 3 interleaved uint16 samples, 256 x 256 tiles."""
    path = tmp_path_factory.mktemp("pred") / "pred.tif"
    rng = np.random.default_rng(5)
    data = rng.integers(0, 60000, (3, 600, 700)).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=700, height=600, count=3, dtype="uint16", tiled=True,
                       blockxsize=256, blockysize=256, compress="DEFLATE", predictor=2, interleave="pixel",
                       crs="EPSG:32633", transform=from_origin(500_000, 4_000_000, 10, 10)) as dst:
        dst.write(data)
    return str(path), read_header(str(path))


window = st.tuples(st.integers(0, 699), st.integers(0, 599), st.integers(1, 300), st.integers(1, 300))


@settings(max_examples=60, deadline=None)
@given(windows=st.lists(window, min_size=1, max_size=3))
def test_windows_on_predicted_tiles_equal_rasterio(predicted, windows):
    path, header = predicted
    cut = [Window(c, r, min(w, 700 - c), min(h, 600 - r)) for c, r, w, h in windows]
    got = read_windows([(header, ((w.row_off, w.row_off + w.height), (w.col_off, w.col_off + w.width))) for w in cut])
    with rasterio.open(path) as src:
        for ours, w in zip(got, cut):
            np.testing.assert_array_equal(ours, src.read(window=w))
