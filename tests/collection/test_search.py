"""Search: the same suite against a real STAC API (pgstac) and a local items file."""

from __future__ import annotations

import json

import pytest
import shapely

from rasteret_core.stac import ItemsFileError, load_items, search
from rasteret_core.stac.sources import DataSource
from tests.servers.stac_items import collection_document

from .conftest import NAIP_PARQUET, PC_S2_ITEMS, S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")


@pytest.fixture(params=["items-file", "stac-api"])
def source(request, s2_items_file, s2_items) -> DataSource:
    if request.param == "items-file":
        return DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    api = request.getfixturevalue("stac_api")
    api.load_collections([collection_document("sentinel-2-l2a")])
    api.clear_items("sentinel-2-l2a")
    api.load_items(s2_items)
    return DataSource.from_stac(api.url, "sentinel-2-l2a", S2_BAND_MAP, name="s2-synthetic")


def _ids(result) -> set[str]:
    return {item["id"] for item in result.items}


def test_all_items_in_the_date_range_are_found(source, s2_items):
    result = search(source, date_range=JANUARY, progress=False)
    assert _ids(result) == {i["id"] for i in s2_items}
    assert not result.truncated and not result.empty


def test_bbox_keeps_only_intersecting_footprints(source, s2_items):
    tile0 = [i for i in s2_items if "43PGQ0" in i["id"]]
    geom = shapely.geometry.shape(tile0[0]["geometry"]).buffer(-0.01)
    result = search(source, date_range=JANUARY, bbox=geom.bounds, progress=False)
    assert _ids(result) == {i["id"] for i in tile0}


def test_intersects_geometry_filters_like_bbox(source, s2_items):
    tile1 = [i for i in s2_items if "43PGQ1" in i["id"]]
    point = shapely.geometry.shape(tile1[0]["geometry"]).centroid
    result = search(source, date_range=JANUARY, intersects=point.buffer(0.001), progress=False)
    assert _ids(result) == {i["id"] for i in tile1}


def test_datetime_range_is_inclusive_whole_days(source):
    result = search(source, date_range=("2024-01-10", "2024-01-10"), progress=False)
    assert {i["properties"]["datetime"][:10] for i in result.items} == {"2024-01-10"}
    assert len(result) == 2


def test_cloud_cover_comparison_is_numeric(source):
    # textual comparison would keep "100.0" < "50" and drop "9.0"
    result = search(source, date_range=JANUARY, cloud_cover_lt=50, progress=False)
    assert sorted(i["properties"]["eo:cloud_cover"] for i in result.items) == [5.0, 9.0, 12.5, 35.0]


def test_platform_in_filter_as_the_seed_writes_it(source):
    result = search(source, date_range=JANUARY, platform={"in": ["sentinel-2b"]}, progress=False)
    assert {i["properties"]["platform"] for i in result.items} == {"sentinel-2b"}
    assert len(result) == 2
    assert len(search(source, date_range=JANUARY, platform="sentinel-2a", progress=False)) == 4


def test_max_items_guard_truncates_and_says_so(source):
    result = search(source, date_range=JANUARY, max_items=2, progress=False)
    assert len(result) == 2 and result.truncated
    assert "max_items=2" in result.message


def test_empty_search_is_an_explicit_result_not_an_error(source):
    result = search(source, date_range=("2019-01-01", "2019-01-31"), progress=False)
    assert result.items == [] and result.empty
    assert "no s2-synthetic items match" in result.message


@pytest.mark.parametrize("date_range", [("2024-13-01", "2024-12-31"), ("2024-02-01", "2024-01-01"), ("x",), "2024"])
def test_bad_dates_are_value_errors(source, date_range):
    with pytest.raises(ValueError):
        search(source, date_range=date_range, progress=False)


def test_bbox_outside_lon_lat_is_a_value_error(source):
    with pytest.raises(ValueError, match="lon/lat"):
        search(source, date_range=JANUARY, bbox=(770000, 1440000, 780000, 1450000), progress=False)


def test_ndjson_items_file_gives_the_same_items(tmp_path, s2_items):
    path = tmp_path / "items.ndjson"
    path.write_text("\n".join(json.dumps(i) for i in s2_items) + "\n")
    assert [i["id"] for i in load_items(path)] == [i["id"] for i in s2_items]


def test_relative_hrefs_resolve_against_the_items_file(tmp_path, s2_items):
    item = s2_items[0]
    item["assets"]["red"]["href"] = "scenes/B04.tif"
    path = tmp_path / "items.json"
    path.write_text(json.dumps([item]))
    assert load_items(path)[0]["assets"]["red"]["href"] == str(tmp_path / "scenes" / "B04.tif")


def test_stac_geoparquet_items_file_is_searchable():
    naip = DataSource.from_items_file(NAIP_PARQUET, {"image": "image"}, name="naip")
    result = search(naip, date_range=("2000-01-01", "2030-12-31"), progress=False)
    assert len(result) == 5
    item = result.items[0]
    assert item["assets"]["image"]["href"].startswith("https://")
    assert item["properties"]["proj:epsg"] and item["properties"]["datetime"].endswith("Z")
    assert all(None not in link.values() for link in item["links"])  # struct nulls dropped


def test_planetary_computer_item_list_is_searchable_with_its_band_keys():
    pc = DataSource.from_items_file(PC_S2_ITEMS, {"B04": "B04", "B08": "B08"}, name="pc-s2")
    result = search(pc, date_range=("2024-04-19", "2024-04-19"), cloud_cover_lt=0.5, progress=False)
    assert sorted(i["properties"]["eo:cloud_cover"] for i in result.items) == pytest.approx([0.126773, 0.219774])


def test_missing_items_file_is_a_clear_error(tmp_path):
    src = DataSource.from_items_file(tmp_path / "nope.json", S2_BAND_MAP)
    with pytest.raises(ItemsFileError, match="nope.json"):
        search(src, date_range=JANUARY, progress=False)


def test_results_are_paged_through_next_links(source, s2_items):
    result = search(source, date_range=JANUARY, page_size=2, progress=False)
    assert _ids(result) == {i["id"] for i in s2_items}
    if source.stac_url:
        assert result.pages >= 3
