"""Data sources: registry, band maps, href selection and serialisation."""

from __future__ import annotations

import json

import pytest

from rasteret_core.stac.sources import DataSource, DataSources

from .conftest import LANDSAT_ITEMS, PC_S2_ITEMS


def test_builtin_sources_are_registered_with_their_band_maps():
    s2 = DataSources.get("sentinel-2-l2a")
    assert s2 is DataSources.SENTINEL2
    assert s2.stac_url == "https://earth-search.aws.element84.com/v1"
    assert s2.asset_key("B04") == "red" and s2.asset_key("B8A") == "nir08" and s2.asset_key("SCL") == "scl"
    assert not s2.requester_pays
    landsat = DataSources.get("landsat")
    assert landsat is DataSources.LANDSAT
    assert landsat.collection == "landsat-c2l2-sr" and landsat.requester_pays
    assert landsat.band_map["QA_PIXEL"] == "qa_pixel" and landsat.band_map["B5"] == "nir08"
    assert DataSources.LANDSAT_EARTH_SEARCH.collection == "landsat-c2-l2"


def test_landsatlook_hrefs_come_from_alternate_s3():
    item = json.loads(LANDSAT_ITEMS[0].read_text())
    href = DataSources.LANDSAT.asset_href(item["assets"]["red"])
    assert href.startswith("s3://usgs-landsat/") and href.endswith("_SR_B4.TIF")


def test_href_field_falls_back_to_plain_href_when_missing():
    asset = {"href": "https://example.com/a.tif"}
    assert DataSources.LANDSAT.asset_href(asset) == "https://example.com/a.tif"


def test_planetary_computer_band_map_resolves_its_own_asset_keys():
    items = json.loads(PC_S2_ITEMS.read_text())
    pc = DataSources.custom(
        "https://planetarycomputer.microsoft.com/api/stac/v1", "sentinel-2-l2a",
        {"B04": "B04", "B08": "B08"}, name="pc-sentinel-2-l2a",
    )
    href = pc.asset_href(items[0]["assets"][pc.asset_key("B04")])
    assert href.endswith("_B04_10m.tif")


def test_unknown_band_code_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'B99'"):
        DataSources.SENTINEL2.check_bands(["B04", "B99"])


def test_unknown_source_name_is_a_value_error():
    with pytest.raises(ValueError, match="unknown data source"):
        DataSources.get("modis")


def test_source_round_trips_through_a_dict_and_registers(tmp_path):
    src = DataSource.from_items_file(tmp_path / "items.json", {"B04": "red"}, name="demo-items-test")
    again = DataSource.from_dict(json.loads(json.dumps(src.to_dict())))
    assert again == src
    DataSources.register(src)
    assert DataSources.get("DEMO-ITEMS-TEST") == src
    with pytest.raises(ValueError, match="already registered"):
        DataSources.register(DataSource.from_items_file(tmp_path / "other.json", {"B08": "nir"}, name="demo-items-test"))


def test_a_source_needs_exactly_one_place_to_search():
    with pytest.raises(ValueError):
        DataSource(name="x", band_map={"B04": "red"})
