"""Header harvest: headers equal rasterio's view, per-asset failures recorded, proj checks."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import rasterio

from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSource, DataSources

from .conftest import S2_BAND_MAP, S2_FIXTURE_DIR


def _assert_header_matches_rasterio(header, path):
    with rasterio.open(path) as ds:
        assert header.shape == (ds.height, ds.width)
        assert tuple(header.transform) == pytest.approx(tuple(ds.transform)[:6])
        assert header.crs_epsg == ds.crs.to_epsg()
        assert header.dtype == ds.dtypes[0]
        assert header.nodata == ds.nodata
        assert (header.tile_height, header.tile_width) == ds.block_shapes[0]
        assert header.count == ds.count
        assert len(header.overviews) == len(ds.overviews(1))


def test_real_sentinel2_headers_equal_what_rasterio_reports(real_s2_item):
    result = harvest([real_s2_item], DataSources.SENTINEL2, bands=["B04", "B08", "B11", "SCL"], progress=False)
    assert result.failures == []
    scene = result.scenes[0]
    assert scene.id == "S2A_29RKH_20200219_0_L2A" and scene.cloud_cover == pytest.approx(4.051854)
    for band, name in (("B04", "B04.tif"), ("B08", "B08.tif"), ("B11", "B11.tif"), ("SCL", "SCL.tif")):
        asset = scene.bands[band]
        assert asset.error is None
        _assert_header_matches_rasterio(asset.header, S2_FIXTURE_DIR / name)
    assert scene.bands["B04"].scale == 0.0001 and scene.bands["B04"].offset == 0
    assert scene.properties["assets"]["red"]["href"].endswith("B04.tif")  # full assets kept
    # one request per GDAL COG header
    assert result.stats.requests == 4 and result.stats.header_requests == 4


def test_band_codes_naming_the_same_asset_cost_one_header_request(real_s2_item):
    # Landsat sources name each band twice (B4 and red); the COG must be opened once, not per code
    source = dataclasses.replace(DataSources.SENTINEL2, band_map={"B04": "red", "red": "red", "B08": "nir"})
    result = harvest([real_s2_item], source, bands=["B04", "red", "B08"], progress=False)
    assert result.failures == []
    assert result.stats.requests == 2 and result.stats.header_requests == 2  # B04.tif and B08.tif
    scene = result.scenes[0]
    _assert_header_matches_rasterio(scene.bands["red"].header, S2_FIXTURE_DIR / "B04.tif")
    assert scene.bands["red"].header == scene.bands["B04"].header


def test_stac_proj_values_that_disagree_with_the_header_are_reported(real_s2_item):
    # the fixture COGs were downsampled 10x, the item still describes the 10980-px originals
    result = harvest([real_s2_item], DataSources.SENTINEL2, bands=["B04"], progress=False)
    assert any("proj:shape [10980, 10980] != header shape [1098, 1098]" in w for w in result.warnings)
    assert any("proj:transform" in w for w in result.warnings)
    assert not any("EPSG" in w for w in result.warnings)  # proj:epsg 32629 agrees


def test_consistent_items_give_no_warnings_and_one_request_per_header(s2_items):
    source = DataSource.from_items_file("unused.json", S2_BAND_MAP, name="s2-synthetic")
    result = harvest(s2_items, source, progress=False)
    assert result.failures == [] and result.warnings == []
    assert len(result.scenes) == 6 and all(len(s.bands) == 3 for s in result.scenes)
    assert result.stats.requests == 18  # 6 scenes x 3 bands, one GET each


def test_missing_truncated_and_non_tiff_assets_are_recorded_while_others_succeed(real_s2_item, tmp_path):
    truncated = tmp_path / "B08_truncated.tif"
    truncated.write_bytes((S2_FIXTURE_DIR / "B08.tif").read_bytes()[:700])
    not_tiff = tmp_path / "SCL.tif"
    not_tiff.write_bytes(b"<html>AccessDenied</html>" * 10)
    real_s2_item["assets"]["nir"]["href"] = str(truncated)
    real_s2_item["assets"]["scl"]["href"] = str(not_tiff)
    real_s2_item["assets"]["swir16"]["href"] = str(tmp_path / "missing.tif")
    del real_s2_item["assets"]["blue"]
    result = harvest([real_s2_item], DataSources.SENTINEL2, bands=["B04", "B08", "B11", "SCL", "B02"], progress=False)
    bands = result.scenes[0].bands
    assert bands["B04"].header is not None and bands["B04"].error is None
    errors = {f.band: f.error for f in result.failures}
    assert set(errors) == {"B08", "B11", "SCL", "B02"}
    assert errors["B08"].startswith(("TruncatedHeaderError: ", "InvalidTiffError: "))
    assert errors["B11"].startswith("HttpStatusError: ") and "missing.tif" in errors["B11"]
    assert errors["SCL"].startswith("NotATiffError: ")
    assert errors["B02"].startswith("MissingAssetError: ") and "'blue'" in errors["B02"]
    for band, error in errors.items():
        assert bands[band].header is None and bands[band].error == error
    assert "4 failed" in result.summary()


def test_unknown_band_is_refused_before_any_request(real_s2_item):
    with pytest.raises(ValueError, match="B99"):
        harvest([real_s2_item], DataSources.SENTINEL2, bands=["B99"], progress=False)


def test_pystac_items_are_accepted(s2_items):
    import pystac

    source = DataSource.from_items_file("unused.json", S2_BAND_MAP, name="s2-synthetic")
    items = [pystac.Item.from_dict(i) for i in s2_items[:1]]
    result = harvest(items, source, bands=["B04"], progress=False)
    assert result.scenes[0].bands["B04"].header.width == 512
