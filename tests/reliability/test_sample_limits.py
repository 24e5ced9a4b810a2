"""Window limits count every sample and plane: a small file whose header claims hundreds of
samples per pixel (empty tiles, so the file stays tiny) is refused by name before its output
array is allocated, and a window over a grid of 1 x 1 tiles before its tile list is built."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

from rasteret_core.cog import LimitError, read_window
from rasteret_core.cog.reader import MAX_WINDOW_TILES
from tests.helpers.scenes import small_header


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return small_header(tmp_path_factory.mktemp("cog"))


def planar(header, samples: int, size: int):
    """``header`` claiming ``samples`` planes of ``size`` x ``size`` with empty (sparse) tiles."""
    tiles = samples * (-(-size // header.tile_width)) * (-(-size // header.tile_height))
    zeros = np.zeros(tiles, np.uint64)
    return replace(header, width=size, height=size, samples_per_pixel=samples, planar_configuration=2,
                   tile_offsets=zeros, tile_byte_counts=zeros, overviews=(), mask=None)


@pytest.mark.parametrize("samples", [400, 65535])
def test_a_window_of_many_planes_is_refused_before_allocation(base, samples, record_property):
    hostile = planar(base, samples, 2048)  # 400 planes: 1.6 GiB of output for a few KiB of file
    tracemalloc.start()
    with pytest.raises(LimitError, match=f"{samples} sample"):
        read_window(hostile, ((0, 2048), (0, 2048)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    record_property(f"reliability.peak_python_alloc_mib_planar_{samples}", round(peak / 2**20, 1))
    assert peak < 64 * 2**20


def test_a_modest_multi_sample_window_still_reads(base):
    ok = planar(base, 4, 64)
    assert read_window(ok, ((0, 64), (0, 64))).shape == (4, 64, 64)


def test_a_window_over_millions_of_tiny_tiles_is_refused_before_listing_them(base):
    tiny = replace(base, width=200_000, height=200_000, tile_width=1, tile_height=1,
                   tile_offsets=np.zeros(1, np.uint64), tile_byte_counts=np.zeros(1, np.uint64), overviews=(), mask=None)
    tracemalloc.start()
    with pytest.raises(LimitError, match=f"more than {MAX_WINDOW_TILES}"):
        read_window(tiny, ((0, 2000), (0, 2000)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20
