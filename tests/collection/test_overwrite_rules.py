"""Collections are never replaced, left empty or listed unusable without being asked or told."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from rasteret_core import BuildError, CollectionExistsError, DataSource, EmptyResultWarning, Rasteret
from rasteret_core.collection import build_collection, build_date

from .conftest import S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")


@pytest.fixture
def source(s2_items_file) -> DataSource:
    return DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")


def test_building_an_existing_name_is_refused_unless_overwrite_or_refresh(tmp_path, source):
    r = Rasteret("blr", source, JANUARY, workspace_dir=tmp_path, progress=False)
    assert r.create_collection(cloud_cover_lt=50).scenes == 4  # 5th and 10th
    before = sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("part.parquet"))
    with pytest.raises(CollectionExistsError, match="already exists.*overwrite=True.*refresh=True"):
        r.create_collection()
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("part.parquet")) == before  # untouched
    refreshed = r.create_collection(cloud_cover_lt=90, refresh=True)  # adds the 15th (80 %)
    assert refreshed.scenes == 5 and len(r.collection.dates()) == 3
    replaced = r.create_collection(cloud_cover_lt=10, overwrite=True)  # only 5th tile 0 and 10th tile 1
    assert replaced.scenes == 2 and [d.day for d in Rasteret.load_collection(r.name, tmp_path).collection.dates()] == [5, 10]


def test_an_empty_search_leaves_no_collection_and_warns(tmp_path, source):
    r = Rasteret("nothing", source, ("2019-01-01", "2019-01-31"), workspace_dir=tmp_path, progress=False)
    with pytest.warns(EmptyResultWarning, match="no s2-synthetic items match"):
        report = r.create_collection()
    assert report.empty and Rasteret.list_collections(tmp_path) == []
    assert "built=False" in repr(r)


def test_a_build_whose_every_header_fails_raises_and_writes_nothing(tmp_path, s2_items):
    for item in s2_items:
        for asset in item["assets"].values():
            asset["href"] = str(tmp_path / "gone" / asset["href"].rsplit("/", 2)[-2] / "x.tif")
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": s2_items}))
    src = DataSource.from_items_file(path, S2_BAND_MAP, name="broken")
    with pytest.raises(BuildError, match="none of the 18 COG headers of 6 items could be read.*first causes:") as info:
        build_collection(src, root=tmp_path / "c", date_range=JANUARY, progress=False)
    assert len(info.value.report.failures) == 18 and not (tmp_path / "c").exists()
    with pytest.raises(BuildError):  # the pipeline's per-date build says the same and keeps the old partition
        build_date(src, dt.date(2024, 1, 5), root=tmp_path / "c", progress=False)
    assert Rasteret.list_collections(tmp_path) == []
