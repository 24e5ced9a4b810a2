"""The tile cache: a tile fetched once is decoded from local disk by later reads (in this
process or another), with rasterio's pixels; nothing else is ever taken for a tile's bytes."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings, strategies as st
from rasterio.windows import Window

from rasteret_core.cog import ReadStats, TileCache, read_header, read_window, read_windows
from rasteret_core.errors import ArgumentError, StaleHeaderError, UnsafePathError
from rasteret_core.testing.object_store import ObjectStoreServer

S2_KEY = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
REPO = Path(__file__).resolve().parents[2]


def truth(fixtures: Path, window: Window) -> np.ndarray:
    with rasterio.open(fixtures / S2_KEY) as src:
        return src.read(window=window)


def test_a_second_read_of_the_same_tiles_fetches_no_tile_and_gives_rasterios_pixels(store, shared_fixtures_dir, tmp_path):
    cache = TileCache(tmp_path / "tiles")
    header = read_header(store.url("public", S2_KEY))
    assert header.validator, "the store answers with a version: the cache needs one"
    window = Window(300, 200, 700, 500)
    store.reset_stats()
    first, second = ReadStats(), ReadStats()
    a = read_window(header, window, stats=first, tile_cache=cache)
    fetched = store.stats.requests
    b = read_window(header, window, stats=second, tile_cache=cache)
    expected = truth(shared_fixtures_dir, window)
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(b, expected)
    assert fetched == first.requests > 0 and first.tiles_from_cache == 0
    # every tile from the cache: one conditional byte checks the file is still that version
    assert second.requests == 1 and second.bytes_fetched == 1 and second.tiles_read == 0
    assert second.tiles_from_cache == first.tiles_read > 0


def test_another_process_reads_the_tiles_this_one_cached(store, shared_fixtures_dir, tmp_path):
    header = read_header(store.url("public", S2_KEY))
    window = Window(0, 0, 400, 400)
    read_window(header, window, tile_cache=str(tmp_path / "tiles"))  # a path is accepted as the folder
    store.reset_stats()
    child = ("import sys, json, numpy as np; from rasterio.windows import Window; "
             "from rasteret_core.cog import CogHeader, ReadStats, read_window; "
             "h = CogHeader.from_dict(json.loads(sys.stdin.read())); s = ReadStats(); "
             "a = read_window(h, Window(0, 0, 400, 400), stats=s, tile_cache=sys.argv[1]); "
             "np.save(sys.argv[2], a); print(s.requests, s.tiles_from_cache)")
    import json

    out = tmp_path / "child.npy"
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path / "tiles"), str(out)], input=json.dumps(header.to_dict()),
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    requests, from_cache = map(int, done.stdout.split())
    assert requests == 1 and from_cache > 0  # the file's version check, no tile
    np.testing.assert_array_equal(np.load(out), truth(shared_fixtures_dir, window))


@pytest.mark.parametrize("first_window", [Window(0, 0, 64, 64), Window(0, 0, 1098, 64)],
                         ids=["every-tile-cached", "some-tiles-cached"])
def test_a_replaced_file_is_never_decoded_from_the_cache(shared_fixtures_dir, tmp_path, first_window):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    shutil.copy(shared_fixtures_dir / S2_KEY, bucket / "B04.tif")
    cache = TileCache(tmp_path / "tiles")
    with ObjectStoreServer(buckets={"b": bucket}) as server:
        header = read_header(server.url("b", "B04.tif"))
        read_window(header, Window(0, 0, 64, 64), tile_cache=cache)
        shutil.copy(shared_fixtures_dir / S2_KEY, bucket / "new.tif")
        os.replace(bucket / "new.tif", bucket / "B04.tif")  # the same URL, another version
        stats = ReadStats()
        with pytest.raises(StaleHeaderError):
            read_window(header, first_window, stats=stats, tile_cache=cache)
        out = read_windows([(header, Window(0, 0, 64, 64)), (header, first_window)], tile_cache=cache,
                           return_exceptions=True)
    assert all(isinstance(o, StaleHeaderError) for o in out)  # cached windows of the file fail too


def one_cached_tile(store, folder: Path):
    """A cache holding the one tile under a 64 x 64 window of the fixture, and that entry's file."""
    cache = TileCache(folder)
    header = read_header(store.url("public", S2_KEY))
    window = Window(0, 0, 64, 64)
    read_window(header, window, tile_cache=cache)
    (entry,) = [p for p in folder.rglob("*") if p.is_file()]
    return cache, header, window, entry


def test_an_entry_that_does_not_decode_is_dropped_and_fetched_again(store, shared_fixtures_dir, tmp_path):
    cache, header, window, entry = one_cached_tile(store, tmp_path / "tiles")
    good = entry.read_bytes()
    entry.write_bytes(b"\xff" * len(good))  # the right length, not the file's bytes
    stats = ReadStats()
    (got,) = read_windows([(header, window)], stats=stats, tile_cache=cache, return_exceptions=True)
    np.testing.assert_array_equal(got, truth(shared_fixtures_dir, window))
    assert stats.tiles_from_cache == 0 and stats.tiles_read == 1
    assert entry.read_bytes() == good  # replaced by the fetched bytes


def test_an_entry_of_the_wrong_length_is_a_miss_and_is_removed(store, shared_fixtures_dir, tmp_path):
    cache, header, window, entry = one_cached_tile(store, tmp_path / "tiles")
    entry.write_bytes(entry.read_bytes()[:-1])  # a truncated entry (e.g. written by other means)
    stats = ReadStats()
    np.testing.assert_array_equal(read_window(header, window, stats=stats, tile_cache=cache),
                                  truth(shared_fixtures_dir, window))
    assert stats.tiles_from_cache == 0 and stats.requests == 1
    assert entry.stat().st_size == int(header.tile_byte_counts[0])  # fetched again and kept whole


def test_many_windows_sharing_tiles_fill_the_cache_once(store, shared_fixtures_dir, tmp_path):
    cache = TileCache(tmp_path / "tiles")
    header = read_header(store.url("public", S2_KEY))
    windows = [Window(0, 0, 100, 100), Window(50, 50, 600, 100), Window(600, 0, 100, 700)]
    read_windows([(header, w) for w in windows[:1]], tile_cache=cache)
    store.reset_stats()
    stats = ReadStats()
    out = read_windows([(header, w) for w in windows], stats=stats, tile_cache=cache)
    for w, got in zip(windows, out):
        np.testing.assert_array_equal(got, truth(shared_fixtures_dir, w))
    assert stats.tiles_from_cache == 1  # the first window's tile; the others were fetched
    assert stats.tiles_read > 0 and store.stats.requests == stats.requests


def test_a_folder_in_a_parent_others_can_write_is_refused_unless_sticky(tmp_path):
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)
    with pytest.raises(UnsafePathError, match="parent folder .* writable by other users"):
        TileCache(open_parent / "tiles").get("http://x/a.tif", "etag", 0, 10)
    os.chmod(open_parent, 0o1777)  # as /tmp: others cannot rename what is in it
    assert TileCache(open_parent / "tiles").get("http://x/a.tif", "etag", 0, 10) is None


def test_many_short_runs_keep_the_folder_within_its_bound(tmp_path):
    folder = tmp_path / "tiles"
    for run in range(30):  # each run a new process: a new cache object writing a little
        cache = TileCache(folder, max_bytes=10_000)
        for k in range(3):
            cache.put(f"http://x/{run}-{k}.tif", "v1", 0, 400, bytes(400))
        assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 10_000 + 3 * 400


def test_a_folder_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(UnsafePathError, match="writable by other users"):
        TileCache(shared).get("http://x/a.tif", "etag", 0, 10)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UnsafePathError, match="not a folder"):
        TileCache(link).get("http://x/a.tif", "etag", 0, 10)
    with pytest.raises(ArgumentError):
        TileCache(tmp_path / "ok", max_bytes=0)


def test_unversioned_files_are_never_cached(tmp_path):
    cache = TileCache(tmp_path / "tiles")
    cache.put("http://x/a.tif", None, 0, 3, b"abc")
    assert cache.get("http://x/a.tif", None, 0, 3) is None
    assert not any(p.is_file() for p in (tmp_path / "tiles").rglob("*"))


def test_the_cache_pickles_to_the_same_folder_for_workers(tmp_path):
    cache = TileCache(tmp_path / "tiles", max_bytes=1000)
    assert pickle.loads(pickle.dumps(cache)) == cache


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(50, 400)), min_size=1, max_size=40))
def test_the_folder_stays_within_its_bound_and_keeps_the_latest_entry(tmp_path_factory, writes):
    folder = tmp_path_factory.mktemp("bounded")
    cache = TileCache(folder, max_bytes=1000)
    for key, size in writes:
        data = bytes([key]) * size
        cache.put(f"http://x/{key}.tif", "v1", 0, size, data)
    total = cache.trim()
    assert total <= 1000
    assert total == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    key, size = writes[-1]
    assert cache.get(f"http://x/{key}.tif", "v1", 0, size) == bytes([key]) * size
