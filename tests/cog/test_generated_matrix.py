"""A generated matrix of GDAL-written TIFFs reads value for value like rasterio."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

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
    extras = {(k, v) for c in CASES for k, v in c.extra.items()}
    assert {("PHOTOMETRIC", "CMYK"), ("NBITS", "12"), ("NBITS", "16"), ("NBITS", "2"), ("NBITS", "4")} <= extras
    assert any(c.overview_levels for c in CASES) and any(c.crs != "EPSG:32633" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_generated_file_matches_rasterio(case, matrix_dir):
    path = write_case(case, matrix_dir)
    header = read_header(path)
    with rasterio.open(path) as src:
        assert (header.height, header.width, header.count) == (src.height, src.width, src.count)
        assert header.dtype == np.dtype(src.dtypes[0])
        assert header.transform == pytest.approx(tuple(src.transform)[:6])
        assert header.crs_epsg == src.crs.to_epsg()
        if header.crs_epsg is None:  # the CRS travels as WKT, equal to GDAL's
            assert CRS.from_wkt(header.crs_wkt) == src.crs
        assert header.nodata == src.nodata
        # overviews numbered as GDAL numbers them (the file's order), each the size GDAL reports
        assert len(header.overviews) == len(src.overviews(1))
        for name, window in windows_for(header.height, header.width, header.tile_height, header.tile_width).items():
            assert_pixels_match(read_window(header, window), src.read(window=window), header.compression, header.photometric)
    levels = range(len(header.overviews)) if case.overview_levels else range(min(2, len(header.overviews)))
    for level in levels:
        with rasterio.open(path, overview_level=level) as src:
            assert (header.overviews[level].height, header.overviews[level].width) == (src.height, src.width)
            assert_pixels_match(read_window(header, None, overview=level), src.read(), header.compression, header.photometric)
