"""A refresh never drops what it did not re-read: merges per item and band, prunes only when
asked, keeps a date whose search came back empty."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rasteret_core.collection import build_collection, Collection
from rasteret_core.stac.sources import DataSource
from tests.helpers.scenes import DAY, partition_bands, scene, small_header, stored_headers

from .conftest import S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")
BANDS = ["B04", "B08", "SCL"]


@pytest.fixture(scope="module")
def header(tmp_path_factory):
    return small_header(tmp_path_factory.mktemp("cog"))


def test_a_refresh_of_one_band_keeps_the_headers_of_the_others(tmp_path, s2_items_file):
    source = DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    root = tmp_path / "c"
    build_collection(source, root=root, date_range=JANUARY, bands=["B04", "B08"], progress=False)
    before = {(s.id, b) for s in Collection.open(root).scenes(bands=["B04", "B08"]) for b in s.bands}
    report = build_collection(source, root=root, date_range=JANUARY, bands=["SCL"], if_exists="refresh", progress=False)
    assert report.failures == []
    coll = Collection.open(root)
    after = {(s.id, b) for s in coll.scenes(bands=["B04", "B08"]) for b in s.bands}
    assert len(before) == 12 and after == before
    assert len(coll.scenes(bands=["SCL"])) == 6 and set(coll.bands) == set(BANDS)


def test_items_the_search_no_longer_returns_are_kept_unless_pruned(tmp_path, header):
    coll = Collection.create(tmp_path / "c", name="c", bands=BANDS)
    coll.merge_date(DAY, [scene("a", BANDS, header), scene("b", BANDS, header)], read_bands=BANDS)
    kept = coll.merge_date(DAY, [scene("a", BANDS, header)], read_bands=BANDS)
    assert kept.pruned == () and {s.id for s in Collection.open(tmp_path / "c").scenes()} == {"a", "b"}
    pruned = coll.merge_date(DAY, [scene("a", BANDS, header)], read_bands=BANDS, prune=True)
    assert pruned.pruned == ("b",) and {s.id for s in Collection.open(tmp_path / "c").scenes()} == {"a"}


def test_a_failed_new_read_keeps_the_stored_header_and_says_so(tmp_path, header):
    coll = Collection.create(tmp_path / "c", name="c", bands=BANDS)
    coll.merge_date(DAY, [scene("a", BANDS, header)], read_bands=BANDS)
    result = coll.merge_date(DAY, [scene("a", BANDS, header, failed=("B04",))], read_bands=BANDS)
    assert result.kept_headers == ("a B04",)
    assert stored_headers(Collection.open(tmp_path / "c")) == {("a", b) for b in BANDS}


def test_a_refresh_that_prunes_reports_the_removed_items(tmp_path, s2_items_file):
    source = DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    root = tmp_path / "c"
    build_collection(source, root=root, date_range=JANUARY, progress=False)
    kept = build_collection(source, root=root, date_range=JANUARY, cloud_cover_lt=10, if_exists="refresh",
                            progress=False)
    assert kept.pruned == [] and len(Collection.open(root)) == 6
    pruned = build_collection(source, root=root, date_range=JANUARY, cloud_cover_lt=10, if_exists="refresh",
                              prune=True, progress=False)
    remaining = {s.id for s in Collection.open(root).scenes()}
    assert len(pruned.pruned) == 2 and not set(pruned.pruned) & remaining and len(remaining) == 4
    assert "pruned 2 items" in pruned.message
    # the dates whose search found nothing at all are untouched (an empty search never prunes)
    assert dt.date(2024, 1, 15) in Collection.open(root).dates()


# --- property: any sequence of refreshes -----------------------------------------------------------
ITEMS = ["a", "b", "c", "d"]
step = st.tuples(
    st.lists(st.sampled_from(ITEMS), unique=True, max_size=4),   # what the search returns (may be empty)
    st.lists(st.sampled_from(BANDS), unique=True, min_size=1),   # the bands the refresh reads
    st.booleans(),                                               # prune
    st.lists(st.sampled_from(BANDS), unique=True, max_size=1),   # bands whose read fails this time
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(step, min_size=1, max_size=5))
def test_refresh_sequences_lose_no_header_that_was_not_pruned(tmp_path_factory, header, steps):
    root = tmp_path_factory.mktemp("seq") / "c"
    coll = Collection.create(root, name="c", bands=["B04"])
    expected: set[tuple[str, str]] = set()
    for found, bands, prune, failing in steps:
        if not found:  # an empty search: the build writes nothing (see build_date)
            continue
        coll.merge_date(DAY, [scene(i, bands, header, failed=tuple(failing)) for i in found], read_bands=bands,
                        prune=prune)
        if prune:
            expected = {(i, b) for i, b in expected if i in found}
        expected |= {(i, b) for i in found for b in bands if b not in failing}
        reopened = Collection.open(root)
        assert stored_headers(reopened) == expected
        assert partition_bands(reopened) <= set(reopened.bands)
