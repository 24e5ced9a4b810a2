"""A process forked after a read (DataLoader workers, multiprocessing pools) reads too: it gets
decode pools of its own instead of the parent's, whose threads do not exist in it."""

from __future__ import annotations

import multiprocessing

import numpy as np
import rasterio
from rasterio.windows import Window

from rasteret_core.cog import read_header, read_window


def _child_read(path: str, queue) -> None:
    queue.put(read_window(read_header(path), Window(0, 0, 100, 80))[0])


def test_a_forked_child_reads_after_its_parent_did(tmp_path):
    path = tmp_path / "tiled.tif"
    data = np.arange(300 * 200, dtype="uint16").reshape(200, 300)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=1, dtype="uint16", tiled=True,
                       blockxsize=64, blockysize=64, compress="deflate") as dst:
        dst.write(data, 1)
    read_window(read_header(str(path)), Window(0, 0, 300, 200))  # the parent's decode pool now has threads
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_read, args=(str(path), queue), daemon=True)
    child.start()
    got = queue.get(timeout=60)  # before the fix, the child waited for ever on the parent's pool
    child.join(60)
    np.testing.assert_array_equal(got, data[:80, :100])
    assert child.exitcode == 0
