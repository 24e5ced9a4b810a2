"""A generated matrix of GDAL-written TIFFs reads value for value like rasterio."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from rasteret_core.cog import read_header, read_window
from tests.helpers.cog_matrix import matrix_cases, write_case

from .test_fixture_pixels import assert_pixels_match, windows_for

CASES = matrix_cases()


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cog-matrix")


def test_matrix_covers_every_axis():
    assert {c.dtype for c in CASES} >= {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64", "int64", "uint64"}
    assert {c.compress for c in CASES} >= {"NONE", "DEFLATE", "LZW", "ZSTD", "LERC", "PACKBITS", "JPEG", "WEBP", "LZMA"}
    assert {c.predictor for c in CASES} == {1, 2, 3}
    assert any(c.bigtiff for c in CASES) and any(c.interleave == "BAND" for c in CASES)
    assert any(c.width % c.blocksize for c in CASES)  # ragged edge tiles


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_generated_file_matches_rasterio(case, matrix_dir):
    path = write_case(case, matrix_dir)
    header = read_header(path)
    with rasterio.open(path) as src:
        assert (header.height, header.width, header.count) == (src.height, src.width, src.count)
        assert header.dtype == np.dtype(src.dtypes[0])
        assert header.transform == pytest.approx(tuple(src.transform)[:6])
        assert header.crs_epsg == src.crs.to_epsg()
        assert header.nodata == src.nodata
        for name, window in windows_for(header.height, header.width, header.tile_height, header.tile_width).items():
            assert_pixels_match(read_window(header, window), src.read(window=window), header.compression)
    for level, overview in enumerate(header.overviews[:2]):
        with rasterio.open(path, overview_level=level) as src:
            assert_pixels_match(read_window(header, None, overview=level), src.read(), header.compression)
