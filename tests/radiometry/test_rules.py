"""Radiometry rules decided on the REAL items of the shared fixtures (Earth Search v1 pages, the
rio-tiler-pds Sentinel-2 and Landsat items, landsatlook items in odc-stac, Planetary Computer
items in stac-geoparquet), plus variants carrying the inconsistent metadata public issues report
(Element84/earth-search#66, #71: flag, baseline and raster:bands disagreeing)."""

from __future__ import annotations

import copy
import json
from collections import defaultdict

import numpy as np
import pytest

from rasteret_core import radiometry
from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSource, DataSources
from tests.helpers.servers import FIXTURES

PAGES = FIXTURES / "pystac-client" / "extracted_pages"
S2_ITEM = (FIXTURES / "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2"
           "/S2A_29RKH_20200219_0_L2A/S2A_29RKH_20200219_0_L2A.json")
LANDSAT_OLD = (FIXTURES / "rio-tiler-pds/tests/fixtures/usgs-landsat/collection02/level-2/standard/oli-tirs/2020/001/062"
               "/LC08_L2SP_001062_20201031_20201106_02_T2/LC08_L2SP_001062_20201031_20201106_02_T2_SR_stac.json")
LE07 = FIXTURES / "odc-stac/tests/data/LE07_L2SP_044033_20210329_20210424_02_T1_SR.json"
LC08 = FIXTURES / "odc-stac/tests/data/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json"
PC_S2 = FIXTURES / "stac-geoparquet/tests/data/sentinel-2-l2a-pc.json"
PC_LANDSAT = FIXTURES / "stac-geoparquet/tests/data/landsat-c2-l2-pc.json"

pytestmark = pytest.mark.usefixtures("shared_fixtures_dir")
def _load(path):
    data = json.loads(path.read_text())
    return data["features"] if isinstance(data, dict) and "features" in data else (data if isinstance(data, list) else [data])


def page_items(collection):
    return [it for p in sorted(PAGES.glob("*.json")) for it in _load(p) if it["collection"] == collection]


def decide(item, key):
    return radiometry.decide(item, key, item["assets"].get(key))


# --- Sentinel-2 L2A -------------------------------------------------------------------------
def test_earth_search_items_with_offset_applied_get_no_offset_despite_raster_bands():
    items = page_items("sentinel-2-l2a")
    assert len(items) == 7
    for item in items:
        assert item["properties"]["earthsearch:boa_offset_applied"] is True
        assert item["assets"]["red"]["raster:bands"][0]["offset"] == -0.1  # the metadata that misleads
        for key in ("red", "nir"):
            rule = decide(item, key)
            assert (rule.scale, rule.offset, rule.rule) == (0.0001, 0.0, "s2-boa-offset-applied")
            assert "-0.1 ignored" in rule.reason


def test_collection1_items_at_baseline_05_get_the_boa_offset():
    items = page_items("sentinel-2-c1-l2a")
    assert len(items) == 6
    for item in items:
        assert "earthsearch:boa_offset_applied" not in item["properties"]
        rule = decide(item, "red")
        assert rule.rule == "s2-baseline-offset" and rule.scale == 0.0001
        assert rule.offset == pytest.approx(-0.1)
        assert "05.11" in rule.reason


def test_planetary_computer_items_without_raster_bands_get_scale_and_offset_from_the_baseline():
    items = _load(PC_S2)
    assert len(items) == 4
    for item in items:
        assert "raster:bands" not in item["assets"]["B04"]
        rule = decide(item, "B04")
        assert rule.rule == "s2-baseline-offset"
        assert (rule.scale, rule.offset) == (pytest.approx(1e-4), pytest.approx(-0.1))
        assert decide(item, "SCL").rule == "raw"


def test_old_baseline_item_gets_no_offset():
    item = _load(S2_ITEM)[0]
    assert item["properties"]["s2:processing_baseline"] == "02.14"
    rule = decide(item, "red")
    assert (rule.scale, rule.offset, rule.rule) == (0.0001, 0.0, "s2-baseline-no-offset")
    assert decide(item, "scl").rule == "raw"


def test_old_baseline_with_a_negative_raster_bands_offset_still_gets_none():
    """earth-search#66-style: an old-baseline item whose raster:bands claims -0.1."""
    item = copy.deepcopy(_load(S2_ITEM)[0])
    item["assets"]["red"]["raster:bands"][0]["offset"] = -0.1
    rule = decide(item, "red")
    assert (rule.offset, rule.rule) == (0.0, "s2-baseline-no-offset") and "ignored" in rule.reason


def test_new_baseline_flag_false_and_zero_raster_bands_offset_gets_the_offset():
    """earth-search#71-style: flag false on a 05.xx item whose raster:bands offset is 0."""
    for item in page_items("sentinel-2-l2a")[:3]:
        item = copy.deepcopy(item)
        item["properties"]["earthsearch:boa_offset_applied"] = False
        item["assets"]["red"]["raster:bands"][0]["offset"] = 0
        rule = decide(item, "red")
        assert rule.rule == "s2-baseline-offset" and rule.offset == pytest.approx(-0.1)
        assert "boa_offset_applied false" in rule.reason


def test_flag_true_wins_over_an_old_baseline():
    item = copy.deepcopy(_load(S2_ITEM)[0])
    item["properties"]["earthsearch:boa_offset_applied"] = True
    assert decide(item, "nir").rule == "s2-boa-offset-applied"


def test_without_baseline_or_flag_raster_bands_decide():
    item = copy.deepcopy(page_items("sentinel-2-l2a")[0])
    del item["properties"]["earthsearch:boa_offset_applied"], item["properties"]["s2:processing_baseline"]
    rule = decide(item, "red")
    assert (rule.scale, rule.offset, rule.rule) == (0.0001, -0.1, "raster-bands")


@pytest.mark.parametrize("source, expected", [(S2_ITEM, 0.0), (PC_S2, -0.1)])
def test_without_any_metadata_the_sensing_date_decides(source, expected):
    item = copy.deepcopy(_load(source)[0])
    key = "red" if "red" in item["assets"] else "B04"
    item["properties"].pop("s2:processing_baseline")
    item["properties"].pop("earthsearch:boa_offset_applied", None)
    item["assets"][key].pop("raster:bands", None)
    rule = decide(item, key)
    assert rule.rule == "s2-sensing-date" and rule.offset == pytest.approx(expected) and rule.scale == 1e-4


@pytest.mark.parametrize("value, parsed", [("05.11", (5, 11)), ("N0400", (4, 0)), ("04.00", (4, 0)), (5.1, (5, 10)),
                                           ("02.14", (2, 14)), ("garbage", None), (None, None), (True, None)])
def test_processing_baseline_forms(value, parsed):
    assert radiometry.processing_baseline({"properties": {"s2:processing_baseline": value}}) == parsed


def test_unreadable_baseline_falls_through_to_raster_bands_with_the_reason():
    item = copy.deepcopy(page_items("sentinel-2-l2a")[0])
    item["properties"]["s2:processing_baseline"] = "unknown"
    del item["properties"]["earthsearch:boa_offset_applied"]
    assert decide(item, "red").rule == "raster-bands"


def test_l1c_and_sentinel1_items_are_not_given_l2a_rules():
    for item in page_items("sentinel-2-l1c"):
        assert decide(item, "red").rule == "raster-bands"
    for item in page_items("sentinel-1-grd"):
        assert decide(item, "hh").rule in ("raster-bands", "raw")


# --- Landsat C2 L2 ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [LE07, LC08, LANDSAT_OLD])
def test_landsatlook_items_without_raster_bands_get_the_usgs_sr_rule(path):
    item = _load(path)[0]
    for key in [k for k in item["assets"] if k in ("red", "nir08") or k.startswith("SR_B")]:
        assert "raster:bands" not in item["assets"][key]
        rule = decide(item, key)
        assert (rule.scale, rule.offset, rule.rule) == (0.0000275, -0.2, "landsat-c2-sr")
    qa = "qa_pixel" if "qa_pixel" in item["assets"] else "QA_PIXEL.TIF"
    assert decide(item, qa).rule == "raw"


def test_landsat_surface_temperature_gets_the_usgs_st_rule():
    item = copy.deepcopy(_load(LC08)[0])
    href = item["assets"]["red"]["alternate"]["s3"]["href"].replace("_SR_B4.TIF", "_ST_B10.TIF")
    item["assets"]["lwir11"] = {"href": href.replace("s3://usgs-landsat", "https://landsatlook.usgs.gov/data")}
    rule = decide(item, "lwir11")
    assert (rule.scale, rule.offset, rule.rule) == (0.00341802, 149.0, "landsat-c2-st")


def test_landsat_items_with_raster_bands_use_them():
    items = _load(PC_LANDSAT) + page_items("landsat-c2-l2")
    assert len(items) == 5
    for item in items:
        assert decide(item, "red").rule == "raster-bands"
        assert (decide(item, "red").scale, decide(item, "red").offset) == (2.75e-05, -0.2)
    for item in _load(PC_LANDSAT):
        rule = decide(item, "lwir11")
        assert (rule.scale, rule.offset, rule.rule) == (0.00341802, 149.0, "raster-bands")
        assert decide(item, "qa_pixel").rule == "raw"


@pytest.mark.parametrize("path, sensor", [(LE07, "ETM"), (LC08, "OLI"), (LANDSAT_OLD, "OLI")])
def test_landsat_sensor_from_real_items(path, sensor):
    assert radiometry.landsat_sensor(_load(path)[0]) == sensor


def test_oli_band_numbers_are_refused_on_etm_items_and_common_names_read_the_right_file(tmp_path):
    source = DataSources.LANDSAT
    etm, oli = _load(LE07)[0], _load(LC08)[0]
    assert source.band_problem(etm, "B4") is not None and "'red'" in source.band_problem(etm, "B4")
    assert source.band_problem(oli, "B4") is None and source.band_problem(etm, "red") is None
    assert source.asset_href(etm["assets"][source.band_map["red"]]).endswith("_SR_B3.TIF")
    assert source.asset_href(etm["assets"][source.band_map["nir08"]]).endswith("_SR_B4.TIF")
    assert source.asset_href(oli["assets"][source.band_map["B4"]]).endswith("_SR_B4.TIF")
    assert source.asset_href(oli["assets"][source.band_map["B5"]]).endswith("_SR_B5.TIF")
    # harvest records the refusal on the band instead of reading SR_B3 under the label B4
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": [etm]}))
    local = DataSource.from_items_file(items_file, source.band_map, band_sensors=source.band_sensors,
                                       href_field=source.href_field)
    result = harvest([etm], local, bands=["B4"], progress=False)
    assert result.scenes[0].bands["B4"].header is None
    assert result.scenes[0].bands["B4"].error.startswith("BandCodeError")
    assert result.failures and result.stats.requests == 0


# --- user override and storage --------------------------------------------------------------
def test_user_override_wins_and_survives_source_serialisation():
    source = DataSource.from_stac("https://example.test/stac", "sentinel-2-l2a", {"B04": "red"},
                                  radiometry={"B04": {"scale": 0.0002, "offset": -0.05}})
    again = DataSource.from_dict(json.loads(json.dumps(source.to_dict())))
    assert again == source and again.radiometry == {"B04": {"scale": 0.0002, "offset": -0.05}}
    item = page_items("sentinel-2-l2a")[0]
    rule = radiometry.decide(item, "red", item["assets"]["red"], override=again.radiometry["B04"])
    assert (rule.scale, rule.offset, rule.rule) == (0.0002, -0.05, "user-override")
    with pytest.raises(ValueError, match="unknown band"):
        DataSource.from_stac("https://example.test/stac", "c", {"B04": "red"}, radiometry={"B08": {"scale": 1}})
    with pytest.raises(ValueError, match="must be"):
        DataSource.from_stac("https://example.test/stac", "c", {"B04": "red"}, radiometry={"B04": {"gain": 1}})


def test_harvest_stores_the_rule_and_reason_in_the_collection(store, tmp_path):
    """The real Sentinel-2 item, served by the object store: decided once, read back as stored."""
    from rasteret_core.collection.schema import scenes_to_table, table_to_scenes

    item = copy.deepcopy(_load(S2_ITEM)[0])
    base = store.url("public", "rio-tiler-pds/tests/fixtures/sentinel-cogs/")
    for asset in item["assets"].values():
        asset["href"] = asset["href"].replace("https://sentinel-cogs.s3.us-west-2.amazonaws.com/", base)
    source = DataSource.from_stac("https://example.test/stac", "sentinel-2-l2a", {"B04": "red", "SCL": "scl"},
                                  radiometry={"SCL": {"scale": 1.0, "offset": 0.0}})
    result = harvest([item], source, progress=False)
    assert not result.failures
    scenes = table_to_scenes(scenes_to_table(result.scenes, ["B04", "SCL"]))
    red, scl = scenes[0].bands["B04"], scenes[0].bands["SCL"]
    assert (red.scale, red.offset, red.rule) == (0.0001, 0.0, "s2-baseline-no-offset") and "02.14" in red.reason
    assert scl.rule == "user-override"


# --- applying ---------------------------------------------------------------------------------
def test_to_physical_and_cf_attributes_agree_with_xarray_decode_cf():
    import xarray as xr

    dn = np.array([[0, 1000, 1500], [4000, 65535, 0]], dtype=np.uint16)
    want = radiometry.to_physical(dn, 0.0001, -0.1, 0)
    assert np.isnan(want[0, 0]) and want[0, 1] == pytest.approx(0.0) and want[1, 0] == pytest.approx(0.3)
    var = xr.Variable(("y", "x"), dn, attrs=radiometry.cf_attributes(0.0001, -0.1, 0))
    got = xr.decode_cf(xr.Dataset({"v": var})).v.values
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_plausibility_warns_on_many_negative_reflectances_and_leaves_values_alone():
    rng = np.random.default_rng(0)
    dn = rng.integers(200, 1400, (64, 64)).astype(np.uint16)  # pixels that already carry the offset
    twice = radiometry.to_physical(dn, 0.0001, -0.1, 0)
    before = twice.copy()
    warning = radiometry.check_plausible(twice, scene_id="S2B_24MUV_20250731_0_L2A", band="B04", rule="raster-bands")
    assert warning and "S2B_24MUV_20250731_0_L2A" in warning and "raster-bands" in warning
    np.testing.assert_array_equal(twice, before)
    assert radiometry.check_plausible(radiometry.to_physical(dn, 0.0001, 0.0, 0), scene_id="s", band="B04",
                                      rule="s2-boa-offset-applied") is None


def _variant(path_or_items, edit, index=0):
    items = _load(path_or_items) if not isinstance(path_or_items, list) else path_or_items
    item = copy.deepcopy(items[index])
    edit(item)
    return item


def _no_metadata(key):
    def edit(item):
        item["properties"].pop("s2:processing_baseline", None)
        item["properties"].pop("earthsearch:boa_offset_applied", None)
        item["assets"][key].pop("raster:bands", None)
    return edit


def _cases():
    """(label, item, asset key, expected rule, scale, offset, override) over the real items and variants."""
    sr, st = radiometry.LANDSAT_SR, radiometry.LANDSAT_ST
    es = page_items("sentinel-2-l2a")
    cases = [(it["id"], it, "red", "s2-boa-offset-applied", 1e-4, 0.0, None) for it in es]
    cases += [(it["id"], it, "red", "s2-baseline-offset", 1e-4, -0.1, None) for it in page_items("sentinel-2-c1-l2a")]
    cases += [(it["id"], it, "B04", "s2-baseline-offset", 1e-4, -0.1, None) for it in _load(PC_S2)]
    cases += [("rio-tiler-pds S2", _load(S2_ITEM)[0], "red", "s2-baseline-no-offset", 1e-4, 0.0, None)]

    def old_negative(item):
        item["assets"]["red"]["raster:bands"][0]["offset"] = -0.1
    cases += [("old baseline, raster:bands -0.1", _variant(S2_ITEM, old_negative), "red", "s2-baseline-no-offset",
               1e-4, 0.0, None)]

    def flag_false(item):
        item["properties"]["earthsearch:boa_offset_applied"] = False
        item["assets"]["red"]["raster:bands"][0]["offset"] = 0
    cases += [("05.xx, flag false, raster:bands 0", _variant(es, flag_false), "red", "s2-baseline-offset", 1e-4, -0.1, None)]

    def no_baseline(item):
        del item["properties"]["earthsearch:boa_offset_applied"], item["properties"]["s2:processing_baseline"]
    cases += [("no baseline or flag", _variant(es, no_baseline), "red", "raster-bands", 1e-4, -0.1, None)]
    cases += [("no metadata, 2020", _variant(S2_ITEM, _no_metadata("red")), "red", "s2-sensing-date", 1e-4, 0.0, None),
              ("no metadata, 2024", _variant(PC_S2, _no_metadata("B04")), "B04", "s2-sensing-date", 1e-4, -0.1, None)]
    for path in (LE07, LC08):
        cases += [(_load(path)[0]["id"], _load(path)[0], key, "landsat-c2-sr", *sr, None) for key in ("red", "nir08")]
    cases += [("rio-tiler-pds LC08", _load(LANDSAT_OLD)[0], "SR_B4.TIF", "landsat-c2-sr", *sr, None)]

    def with_st(item):
        href = item["assets"]["red"]["href"].replace("_SR_B4.TIF", "_ST_B10.TIF")
        item["assets"]["lwir11"] = {"href": href}
    cases += [("landsatlook + ST_B10", _variant(LC08, with_st), "lwir11", "landsat-c2-st", *st, None)]
    cases += [(it["id"], it, "red", "raster-bands", *sr, None) for it in _load(PC_LANDSAT) + page_items("landsat-c2-l2")]
    cases += [(it["id"], it, "lwir11", "raster-bands", *st, None) for it in _load(PC_LANDSAT)]
    cases += [(it["id"], it, "qa_pixel", "raw", None, None, None) for it in _load(PC_LANDSAT) + [_load(LE07)[0]]]
    cases += [(it["id"], it, "SCL", "raw", None, None, None) for it in _load(PC_S2)]
    cases += [("override", es[0], "red", "user-override", 2e-4, -0.05, {"scale": 2e-4, "offset": -0.05})]
    return cases


CASES = _cases() if FIXTURES.is_dir() else []


@pytest.mark.parametrize("label, item, key, rule, scale, offset, override", CASES, ids=[c[0] for c in CASES])
def test_rule_table_on_real_items(label, item, key, rule, scale, offset, override):
    got = radiometry.decide(item, key, item["assets"].get(key), override=override)
    assert got.rule == rule, got.reason
    assert (got.scale, got.offset) == ((pytest.approx(scale), pytest.approx(offset)) if scale is not None else (None, None))
    assert got.reason


def test_every_rule_has_test_items_behind_it():
    counts = defaultdict(set)
    for label, item, _key, rule, *_ in CASES:
        counts[rule].add(label)
    print("\nradiometry rule -> test items:", {k: len(v) for k, v in sorted(counts.items())})
    assert set(counts) == set(radiometry.RULES)
