"""Earth Search Collection 1 and Planetary Computer sources on their real items: band maps
find the assets, hrefs stay unsigned, and the radiometry rules cover every reflectance band."""

from __future__ import annotations

import json

import pytest

from rasteret_core import radiometry
from rasteret_core.stac.sources import DataSource, DataSources
from tests.helpers.servers import FIXTURES

PAGES = FIXTURES / "pystac-client/extracted_pages"
PC_S2 = FIXTURES / "stac-geoparquet/tests/data/sentinel-2-l2a-pc.json"
PC_LANDSAT = FIXTURES / "stac-geoparquet/tests/data/landsat-c2-l2-pc.json"


def c1_items():
    items = []
    for page in sorted(PAGES.glob("earthsearch_v1_cql2_cloudcover_lte40_*.json")):
        items += [f for f in json.loads(page.read_text())["features"] if f["collection"] == "sentinel-2-c1-l2a"]
    return items


def load(path):
    if not path.is_file():
        pytest.skip("the shared fixtures are not present")
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else data["features"]


CASES = [
    (DataSources.SENTINEL2_C1, c1_items, "B04", 1e-4, -0.1, "s2-baseline-offset"),
    (DataSources.SENTINEL2_C1, c1_items, "SCL", None, None, "raw"),
    # Planetary Computer S2 items have no raster:bands: the processing baseline decides
    (DataSources.PC_SENTINEL2, lambda: load(PC_S2), "B04", 1e-4, -0.1, "s2-baseline-offset"),
    (DataSources.PC_SENTINEL2, lambda: load(PC_S2), "B08", 1e-4, -0.1, "s2-baseline-offset"),
    (DataSources.PC_SENTINEL2, lambda: load(PC_S2), "SCL", None, None, "raw"),
    (DataSources.PC_LANDSAT, lambda: load(PC_LANDSAT), "red", 2.75e-5, -0.2, "raster-bands"),
    (DataSources.PC_LANDSAT, lambda: load(PC_LANDSAT), "nir08", 2.75e-5, -0.2, "raster-bands"),
    (DataSources.PC_LANDSAT, lambda: load(PC_LANDSAT), "QA_PIXEL", None, None, "raw"),
]


@pytest.mark.parametrize("source, items, band, scale, offset, rule", CASES,
                         ids=[f"{c[0].name}-{c[2]}" for c in CASES])
def test_band_maps_find_assets_and_radiometry_covers_them(source, items, band, scale, offset, rule):
    got = items()
    assert got, "no real items of this collection in the fixtures"
    for item in got:
        assert item["collection"] == source.collection
        key = source.asset_key(band)
        asset = item["assets"][key]
        href = source.asset_href(asset)
        assert href and href.startswith("https://") and "?" not in href  # unsigned: no token stored
        decided = radiometry.decide(item, key, asset)
        assert decided.rule == rule, decided.reason
        if scale is None:
            assert decided.scale is None
        else:
            assert decided.scale == pytest.approx(scale) and decided.offset == pytest.approx(offset)


def test_planetary_computer_hrefs_are_azure_blobs_and_sources_name_their_signing():
    for source, path in ((DataSources.PC_SENTINEL2, PC_S2), (DataSources.PC_LANDSAT, PC_LANDSAT)):
        assert source.signing == "planetary-computer"
        for item in load(path):
            for band in ("B04", "SCL") if source is DataSources.PC_SENTINEL2 else ("red", "QA_PIXEL"):
                href = source.asset_href(item["assets"][source.asset_key(band)])
                assert ".blob.core.windows.net/" in href
    assert DataSources.SENTINEL2_C1.signing is None and not DataSources.SENTINEL2_C1.requester_pays


def test_new_sources_are_registered_and_round_trip():
    for name in ("sentinel-2-c1-l2a", "pc-sentinel-2-l2a", "pc-landsat-c2-l2"):
        source = DataSources.get(name)
        assert DataSource.from_dict(json.loads(json.dumps(source.to_dict()))) == source
    assert DataSources.get("pc-sentinel-2") is DataSources.PC_SENTINEL2
    assert DataSources.get("pc-landsat") is DataSources.PC_LANDSAT
    assert DataSources.get("sentinel-2-c1") is DataSources.SENTINEL2_C1
    with pytest.raises(ValueError, match="unknown signing"):
        DataSource.from_stac("https://example.test/stac", "x", {"B04": "B04"}, signing="vault")
