"""Atomic writes: readers see the old file or the new one, and killed writers' leftovers go."""

from __future__ import annotations

import os
import time

import pyarrow.fs as pafs

from rasteret_core.storage import STALE_TEMP_SECONDS, atomic_write


def test_a_write_replaces_the_file_whole_and_leaves_no_temp(tmp_path):
    fs, target = pafs.LocalFileSystem(), f"{tmp_path}/part.parquet"
    atomic_write(fs, target, b"old")
    atomic_write(fs, target, b"new version")
    assert (tmp_path / "part.parquet").read_bytes() == b"new version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.parquet"]


def test_stale_temps_of_killed_writers_are_removed_and_fresh_ones_kept(tmp_path):
    fs, target = pafs.LocalFileSystem(), f"{tmp_path}/part.parquet"
    stale = tmp_path / ".part.parquet.0123abcd.tmp"
    fresh = tmp_path / ".part.parquet.4567ef01.tmp"  # a writer that may still be running
    other = tmp_path / ".other.parquet.89abcdef.tmp"  # another file's writer: not ours to judge
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write(fs, target, b"data")
    assert not stale.exists() and fresh.exists() and other.exists()
