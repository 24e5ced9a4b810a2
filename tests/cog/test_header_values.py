"""CogHeader is an immutable value that round-trips through JSON and Arrow losslessly."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from rasteret_core.cog import CogHeader, read_header

from ._shared import fixture_id, fixture_tiffs

TIFFS = fixture_tiffs()
pytestmark = pytest.mark.skipif(not TIFFS, reason="shared fixtures folder not found")


@pytest.mark.parametrize("path", TIFFS, ids=[fixture_id(p) for p in TIFFS])
def test_json_round_trip_is_lossless(path):
    header = read_header(path)
    text = json.dumps(header.to_dict(), allow_nan=False)
    back = CogHeader.from_dict(json.loads(text))
    assert back == header
    assert back.overviews == header.overviews
    np.testing.assert_array_equal(back.tile_offsets, header.tile_offsets)
    assert back.jpeg_tables == header.jpeg_tables


@pytest.mark.parametrize("path", TIFFS, ids=[fixture_id(p) for p in TIFFS])
def test_arrow_struct_round_trip_is_lossless(path):
    header = read_header(path)
    column = pa.array([header.to_arrow_dict()], type=CogHeader.arrow_type())
    table = pa.table({"B04": column})
    row = table.column("B04").to_pylist()[0]
    assert CogHeader.from_arrow_dict(row) == header


def test_header_is_immutable():
    header = read_header(TIFFS[0])
    with pytest.raises(AttributeError):
        header.width = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        header.tile_offsets[0] = 0


def test_with_url_moves_overviews_and_mask_too():
    path = next(p for p in TIFFS if p.name == "cog_rgb_mask.tif")
    moved = read_header(path).with_url("https://example.com/x.tif")
    assert moved.url == moved.mask.url == "https://example.com/x.tif"
    assert all(o.url == moved.url for o in moved.overviews)


def test_repr_names_shape_and_codec_without_arrays():
    header = read_header(TIFFS[0])
    text = repr(header)
    assert f"{header.width}x{header.height}" in text and "tile_offsets" not in text
