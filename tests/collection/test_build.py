"""Building collections: search + harvest + per-date writes, reports, progress, errors."""

from __future__ import annotations

import datetime as dt
import logging
import socket

import pytest

from rasteret_core.collection import build_collection, build_date, Collection
from rasteret_core.errors import RasteretError
from rasteret_core.progress import Progress
from rasteret_core.stac import search, StacSearchError
from rasteret_core.stac.sources import DataSource

from .conftest import S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")


@pytest.fixture
def source(s2_items_file) -> DataSource:
    return DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")


def test_build_report_counts_scenes_requests_and_bytes(tmp_path, source):
    report = build_collection(source, root=tmp_path / "c", date_range=JANUARY, cloud_cover_lt=50, progress=False)
    assert report.scenes == 4 and report.dates == [dt.date(2024, 1, 5), dt.date(2024, 1, 10)]
    assert report.requests_per_scene == 3  # one header GET per band
    assert report.stats.bytes_fetched > 0 and report.failures == [] and report.warnings == []
    summary = report.as_dict()
    assert summary["scenes"] == 4 and summary["stats_requests"] == 12


def test_build_date_is_idempotent_and_keeps_a_date_whose_search_came_back_empty(tmp_path, source):
    root = tmp_path / "c"
    first = build_date(source, "2024-01-10", root=root, progress=False)
    again = build_date(source, dt.date(2024, 1, 10), root=root, progress=False)
    assert first.scenes == again.scenes == 2
    assert Collection.open(root).dates() == [dt.date(2024, 1, 10)]
    # a stricter filter (or a bad minute of the STAC API) finds nothing that day: the stored
    # partition stays, and the report warns
    empty = build_date(source, "2024-01-10", root=root, cloud_cover_lt=1, progress=False)
    assert empty.empty and empty.writes == []
    assert any("2024-01-10" in w and "kept" in w for w in empty.warnings)
    assert len(Collection.open(root).scenes(date_range=("2024-01-10", "2024-01-10"))) == 2


def test_empty_search_writes_no_collection_and_says_why(tmp_path, source):
    report = build_collection(source, root=tmp_path / "c", date_range=("2020-01-01", "2020-01-31"), progress=False)
    assert report.empty and report.writes == [] and report.collection is None
    assert "no s2-synthetic items match" in report.message and "no collection was written" in report.message
    assert not (tmp_path / "c").exists()


def test_unreachable_stac_api_is_a_rasteret_error_naming_the_endpoint():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = DataSource.from_stac(f"http://127.0.0.1:{port}/stac", "sentinel-2-l2a", S2_BAND_MAP)
    with pytest.raises(StacSearchError, match=f"http://127.0.0.1:{port}/stac") as info:
        search(src, date_range=JANUARY, progress=False)
    assert isinstance(info.value, RasteretError)


def test_progress_logs_when_not_in_a_terminal(caplog, tmp_path, source):
    caplog.set_level(logging.INFO, logger="rasteret_core")
    build_collection(source, root=tmp_path / "c", date_range=JANUARY, progress=True)
    text = caplog.text
    assert "COG headers (s2-synthetic): started (18 headers)" in text
    assert "COG headers (s2-synthetic): done, 18/18 headers" in text


def test_progress_counts_and_postfix_without_output():
    with Progress(3, "x", enabled=False) as bar:
        bar.update()
        bar.update(2)
        bar.set_postfix(failed=1)
    assert bar.n == 3
