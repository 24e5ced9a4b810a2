"""Landsat C2 L2 NDVI on the real rio-tiler-pds Landsat 8 files and their real USGS item (no
raster:bands): the USGS SR rule and the QA_PIXEL cloud bits, against rasterio + numpy."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from rasteret_core.collection.harvest import harvest
from rasteret_core.products.ndvi import aoi_ndvi
from rasteret_core.stac.sources import DataSource
from tests.helpers.servers import FIXTURES

DIR = ("rio-tiler-pds/tests/fixtures/usgs-landsat/collection02/level-2/standard/oli-tirs/2020/001/062"
       "/LC08_L2SP_001062_20201031_20201106_02_T2")
STEM = "LC08_L2SP_001062_20201031_20201106_02_T2"
BANDS = {"red": "SR_B4.TIF", "nir08": "SR_B5.TIF", "QA_PIXEL": "QA_PIXEL.TIF"}


@pytest.fixture(scope="module")
def landsat_item(object_store):
    item = copy.deepcopy(json.loads((FIXTURES / DIR / f"{STEM}_SR_stac.json").read_text()))
    for key in BANDS.values():
        item["assets"][key]["href"] = object_store.url("public", f"{DIR}/{STEM}_{key}")
    with rasterio.open(FIXTURES / DIR / f"{STEM}_SR_B4.TIF") as src:  # the downsampled file's footprint
        box = shapely.box(*src.bounds)
        item["geometry"] = transform_geom(src.crs, "EPSG:4326", mapping(box))
        crs = src.crs
    item["properties"]["datetime"] = "2020-10-31T14:35:00Z"  # the 0.7 item gives the date only
    aoi = shape(transform_geom(crs, "EPSG:4326", mapping(shapely.box(*box.bounds).buffer(-40_000))))
    return item, aoi


def test_landsat_ndvi_uses_the_usgs_rule_and_qa_pixel_bits(landsat_item):
    item, aoi = landsat_item
    source = DataSource.from_stac("https://example.test/stac", "landsat-c2l2-sr", BANDS, name="l8-test")
    result = harvest([item], source, progress=False)
    assert not result.failures
    (scene,) = result.scenes
    assert {b: scene.bands[b].rule for b in BANDS} == {"red": "landsat-c2-sr", "nir08": "landsat-c2-sr", "QA_PIXEL": "raw"}
    out = aoi_ndvi(result.scenes, {"aoi": aoi}, red="red", nir="nir08", mask="QA_PIXEL", mask_kind="qa_pixel")
    (got,) = out.rasters

    def clip(key):
        with rasterio.open(FIXTURES / DIR / f"{STEM}_{key}") as src:
            geom = transform_geom("EPSG:4326", src.crs, mapping(aoi))
            data, transform = rasterio.mask.mask(src, [geom], crop=True, filled=False)
            return data[0], transform

    red, transform = clip("SR_B4.TIF")
    nir, _ = clip("SR_B5.TIF")
    qa, _ = clip("QA_PIXEL.TIF")
    r = red.data * 0.0000275 - 0.2
    n = nir.data * 0.0000275 - 0.2
    cloudy = (qa.data.astype(np.uint32) & 0b11111) != 0  # fill, dilated cloud, cirrus, cloud, shadow
    with np.errstate(divide="ignore", invalid="ignore"):
        want = ((n - r) / (n + r)).astype(np.float32)
    want[np.ma.getmaskarray(red) | (red.data == 0) | (nir.data == 0) | cloudy | (np.abs(want) > 1)] = np.nan
    assert tuple(got.transform)[:6] == pytest.approx(tuple(transform)[:6])
    np.testing.assert_allclose(got.data, want, rtol=1e-5, equal_nan=True)
    # the real scene is 99.94 % cloud: QA_PIXEL masks every pixel of this AOI, which is covered
    assert cloudy[~np.ma.getmaskarray(red)].all() and got.covered_pixels == got.aoi_pixels > 0

    # without the mask, the values themselves: the USGS rule, not raw DNs
    (plain,) = aoi_ndvi(result.scenes, {"aoi": aoi}, red="red", nir="nir08").rasters
    with np.errstate(divide="ignore", invalid="ignore"):
        unmasked = ((n - r) / (n + r)).astype(np.float32)
        raw = ((nir.data.astype(np.float64) - red.data) / (nir.data.astype(np.float64) + red.data)).astype(np.float32)
    outside = np.ma.getmaskarray(red) | (red.data == 0) | (nir.data == 0) | (np.abs(unmasked) > 1)
    unmasked[outside] = np.nan
    np.testing.assert_allclose(plain.data, unmasked, rtol=1e-5, atol=1e-6, equal_nan=True)  # float32 reflectance
    ok = np.isfinite(unmasked)
    assert ok.sum() > 1000 and not np.allclose(raw[ok], unmasked[ok], atol=0.02)
