"""NDVI, reflectance and statistics per date x AOI against an independent rasterio/numpy truth, on
scenes derived from the real Sentinel-2 fixture (same-date adjacent tiles with a swath-edge nodata
strip, a tile in the next UTM zone, a later orbit on another date, an AOI half outside every scene,
a one-pixel AOI), through the library."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers ds.rio)
import xarray as xr

from rasteret_core import Rasteret
from rasteret_core.products.ndvi import aoi_ndvi, ndvi_of
from rasteret_core.products.timeseries import ndvi_statistics
from rasteret_core.stac.sources import DataSource
from tests.ndvi import scenes as S

@pytest.fixture(scope="module")
def rasteret(mosaic_scenes, tmp_path_factory):
    _server, built, items = mosaic_scenes
    source = DataSource.from_items_file(items, S.BANDS, name="s2-derived", short_name="s2derived")
    r = Rasteret("mosaic", source, ("2024-01-01", "2024-01-31"), workspace_dir=tmp_path_factory.mktemp("ws"),
                 progress=False)
    report = r.create_collection(bbox=(-13.0, 24.0, -10.0, 26.0))
    assert report.scenes == 4
    return r


def lattice(built, scene_index=0):
    import rasterio

    with rasterio.open(built[scene_index].files["B04"]) as src:
        return src.transform


def day_scenes(built, day):
    return [s for s in built if s.item["properties"]["datetime"].startswith(day)]


def test_the_stored_rules_are_the_docs_rules(rasteret, mosaic_scenes):
    _server, built, _items = mosaic_scenes
    stored = {s.id: s for s in rasteret.collection.scenes()}
    for scene in built:
        band = stored[scene.id].bands["B04"]
        assert band.offset == pytest.approx(scene.offset) and band.scale == pytest.approx(1e-4), band.reason
    assert stored["S2A_29RLH_20240105_0_L2A"].bands["B04"].rule == "s2-boa-offset-applied"
    assert stored["S2B_29RKH_20240110_0_L2A"].bands["B04"].rule == "s2-baseline-offset"


@pytest.mark.parametrize("aoi", ["swath", "zone", "half_outside", "one_pixel"])
def test_ndvi_mosaic_per_date_and_aoi_equals_the_truth(rasteret, mosaic_scenes, aoi):
    _server, built, _items = mosaic_scenes
    want = S.truth(day_scenes(built, S.DAY1), S.AOIS[aoi], 32629, lattice(built))
    scenes = rasteret.collection.scenes(date_range=(S.DAY1, S.DAY1))
    result = aoi_ndvi(scenes, {aoi: S.AOIS[aoi]}, red="B04", nir="B08", mask="SCL")
    assert not result.failures and len(result.rasters) == 1  # one mosaic for the solar day, not one per tile
    (got,) = result.rasters
    assert got.crs_epsg == 32629
    assert tuple(got.transform)[:6] == pytest.approx(tuple(want["transform"])[:6])
    np.testing.assert_array_equal(got.inside, want["inside"])
    np.testing.assert_allclose(got.data, want["ndvi"], rtol=1e-6, equal_nan=True)
    assert got.scene_ids == want["scene_ids"]
    assert got.covered_pixels == int(want["covered"].sum())

    stats = ndvi_statistics(got.data, got.inside, got.covered_pixels, got.aoi_pixels)
    valid = want["ndvi"][want["inside"] & np.isfinite(want["ndvi"])].astype(np.float64)
    aoi_pixels = want["aoi_pixels"]
    assert stats["aoi_pixels"] == aoi_pixels and stats["valid_pixels"] == valid.size
    assert stats["valid_fraction"] == pytest.approx(valid.size / aoi_pixels)
    assert stats["coverage"] == pytest.approx(want["covered"].sum() / aoi_pixels)
    if valid.size:
        assert stats["mean"] == pytest.approx(valid.mean(), rel=1e-9)
        assert stats["median"] == pytest.approx(np.median(valid), rel=1e-9)
        assert stats["std"] == pytest.approx(valid.std(), rel=1e-9)
        assert (stats["min"], stats["max"]) == (pytest.approx(valid.min()), pytest.approx(valid.max()))
        assert stats["p10"] == pytest.approx(np.percentile(valid, 10), rel=1e-9)
        assert stats["p90"] == pytest.approx(np.percentile(valid, 90), rel=1e-9)


def test_the_scenarios_are_what_they_claim(rasteret, mosaic_scenes):
    """Guards the fixtures: each scenario really exercises what its name says."""
    _server, built, _items = mosaic_scenes
    lat = lattice(built)
    swath = S.truth(day_scenes(built, S.DAY1), S.AOIS["swath"], 32629, lat)
    b_only = S.truth([built[1]], S.AOIS["swath"], 32629, lat, cut_to=day_scenes(built, S.DAY1))
    strip = swath["inside"] & ~b_only["covered"]
    assert 0.2 < strip.sum() / swath["aoi_pixels"] < 0.8  # B's nodata strip crosses the AOI
    assert swath["covered"][swath["inside"]].all() and swath["inside"].sum() == swath["aoi_pixels"]  # ...A fills it
    assert swath["scene_ids"][:2] == [built[1].id, built[0].id]
    zone = S.truth(day_scenes(built, S.DAY1), S.AOIS["zone"], 32629, lat)
    assert built[2].id in zone["scene_ids"] and zone["covered"].sum() / zone["aoi_pixels"] > 0.99
    half = S.truth(day_scenes(built, S.DAY1), S.AOIS["half_outside"], 32629, lat)
    assert 0.4 < half["covered"].sum() / half["aoi_pixels"] < 0.6  # the grid is cut to the scenes...
    assert half["covered"][half["inside"]].all()  # ...so every AOI pixel on it has data
    one = S.truth(day_scenes(built, S.DAY1), S.AOIS["one_pixel"], 32629, lat)
    assert one["inside"].sum() == 1


def test_a_later_orbit_is_its_own_date_with_its_own_offset(rasteret, mosaic_scenes):
    _server, built, _items = mosaic_scenes
    want = S.truth(day_scenes(built, S.DAY2), S.AOIS["swath"], 32629, lattice(built))
    scenes = rasteret.collection.scenes(date_range=(S.DAY2, S.DAY2))
    (got,) = aoi_ndvi(scenes, {"swath": S.AOIS["swath"]}, red="B04", nir="B08", mask="SCL").rasters
    assert got.scene_ids == ["S2B_29RKH_20240110_0_L2A"]
    np.testing.assert_allclose(got.data, want["ndvi"], rtol=1e-6, equal_nan=True)
    day1 = S.truth(day_scenes(built, S.DAY1), S.AOIS["swath"], 32629, lattice(built))
    assert not np.allclose(np.nan_to_num(want["ndvi"]), np.nan_to_num(day1["ndvi"]))


def test_get_xarray_gives_one_time_step_per_solar_day_in_reflectance(rasteret, mosaic_scenes):
    _server, built, _items = mosaic_scenes
    out = rasteret.get_xarray({"swath": S.AOIS["swath"]}, ["B04", "B08", "SCL"], per_geometry=True,
                              reflectance=True, mask_clouds=True)
    ds = out["swath"]
    assert ds.sizes["time"] == 2 and ds.B04.dtype == np.float32 and ds.SCL.dtype == np.uint8
    assert ds.rio.crs.to_epsg() == 32629
    for t, day in zip(ds.time.values, (S.DAY1, S.DAY2)):
        want = S.truth(day_scenes(built, day), S.AOIS["swath"], 32629, lattice(built))
        step = ds.sel(time=t)
        np.testing.assert_allclose(step.B04.values, want["red"], rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(step.B08.values, want["nir"], rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(step.SCL.values, want["scl"])
        np.testing.assert_allclose(ndvi_of(step).values, want["ndvi"], rtol=1e-6, equal_nan=True)
        assert float(step.coverage) == pytest.approx(want["covered"].sum() / want["aoi_pixels"])
        assert str(step.scene_id.values) == ",".join(want["scene_ids"])
    assert rasteret.last_warnings == []


def test_raw_reads_carry_cf_attributes_that_decode_to_the_reflectance(rasteret):
    geoms = {"zone": S.AOIS["zone"]}
    raw = rasteret.get_xarray(geoms, ["B04", "B08"], date_range=(S.DAY1, S.DAY1), per_geometry=True)["zone"]
    phys = rasteret.get_xarray(geoms, ["B04", "B08"], date_range=(S.DAY1, S.DAY1), per_geometry=True,
                               reflectance=True)["zone"]
    assert raw.B04.dtype == np.uint16 and raw.B04.attrs["_FillValue"] == 0
    # A, B (flag true) and C all have offset 0 here: one rule for the variable, CF can say it
    assert raw.B04.attrs["scale_factor"] == pytest.approx(1e-4) and raw.B04.attrs["add_offset"] == 0.0
    decoded = xr.decode_cf(raw)
    np.testing.assert_allclose(decoded.B04.values, phys.B04.values, rtol=1e-6, equal_nan=True)


def test_scl_is_brought_onto_the_10m_grid_before_the_clip(rasteret, mosaic_scenes):
    """No AOI pixel gets SCL 0 where the chosen scene has a class (the seed lost 2-9 % here)."""
    _server, built, _items = mosaic_scenes
    for aoi in ("swath", "half_outside"):
        want = S.truth(day_scenes(built, S.DAY2), S.AOIS[aoi], 32629, lattice(built))
        ds = rasteret.get_xarray({aoi: S.AOIS[aoi]}, ["B04", "SCL"], date_range=(S.DAY2, S.DAY2),
                                 per_geometry=True)[aoi]
        import rasterio
        from rasterio.warp import Resampling, reproject

        scl = np.zeros(want["inside"].shape, np.uint8)
        with rasterio.open(built[3].files["SCL"]) as src:
            reproject(rasterio.band(src, 1), scl, dst_transform=want["transform"], dst_crs="EPSG:32629",
                      resampling=Resampling.nearest)
        got = ds.SCL.isel(time=0).values
        covered = ds.B04.isel(time=0).values != 0
        np.testing.assert_array_equal(got[covered], scl[covered])
        assert (got[covered] != 0).all()


def test_many_negative_reflectances_warn_with_scene_and_rule_and_change_nothing(mosaic_scenes, tmp_path):
    """An item without baseline or flag whose raster:bands offset is wrong (-0.5)."""
    import copy
    import json

    from rasteret_core.errors import RadiometryWarning

    _server, built, _items = mosaic_scenes
    item = copy.deepcopy(built[0].item)
    del item["properties"]["s2:processing_baseline"], item["properties"]["earthsearch:boa_offset_applied"]
    item["assets"]["red"]["raster:bands"][0]["offset"] = -0.5
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    r = Rasteret("wrong", DataSource.from_items_file(path, S.BANDS, name="wrong"), ("2024-01-01", "2024-01-31"),
                 workspace_dir=tmp_path / "ws", progress=False)
    r.create_collection(bbox=(-13.0, 24.0, -10.0, 26.0))
    aoi = {"half": S.AOIS["half_outside"]}
    with pytest.warns(RadiometryWarning, match=r"S2A_29RKH_20240105_0_L2A band B04: .* rule 'raster-bands'"):
        ds = r.get_xarray(aoi, ["B04"], per_geometry=True, reflectance=True)["half"]
    assert any("S2A_29RKH_20240105_0_L2A" in w for w in r.last_warnings)
    raw = r.get_xarray(aoi, ["B04"], per_geometry=True)["half"].B04.isel(time=0).values.astype(np.float64)
    want = np.where(raw > 0, raw * 1e-4 - 0.5, np.nan).astype(np.float32)  # the stated rule, unchanged
    np.testing.assert_allclose(ds.B04.isel(time=0).values, want, rtol=1e-6, equal_nan=True)
