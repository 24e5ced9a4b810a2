"""Spectral indices by name (spyndex's catalogue) on the real Sentinel-2 fixture scene, against an
independent truth: rasterio.mask crops of the files, the coarser band brought onto the finer
grid with rasterio.warp.reproject (nearest), the formulas written out by hand in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_geom
from shapely.geometry import mapping, shape

from rasteret_core.cog import ReaderOptions
from rasteret_core.errors import ArgumentError, RasteretError
from rasteret_core.products.indices import aoi_index, compute_index, indices_for, spectral_index, standard_bands
from rasteret_core.stac.sources import DataSources
from tests.load.conftest import harvested_collection, real_items, S2_DIR

SCALE = 1e-4  # the 2020 scene predates processing baseline 04.00: reflectance = DN / 10000
AOI_UTM = shapely.Polygon([(231_050, 2_711_050), (262_030, 2_714_980), (259_970, 2_741_020), (236_020, 2_738_030)])
AOI = shape(transform_geom("EPSG:32629", "EPSG:4326", mapping(AOI_UTM)))
AOI_BACK = transform_geom("EPSG:4326", "EPSG:32629", mapping(AOI))  # what the reader clips with


@pytest.fixture(scope="module")
def scenes(object_store, tmp_path_factory):
    options = ReaderOptions(endpoint_url=object_store.endpoint_url)
    coll = harvested_collection(tmp_path_factory.mktemp("indices") / "s2", real_items()[:1], ["B04", "B08", "B11"],
                                options, "s2-indices")
    return coll.scenes(), options


def crop(band: str):
    """The AOI's crop of ``band`` (rasterio.mask semantics), as reflectance with NaN outside."""
    with rasterio.open(S2_DIR / f"{band}.tif") as src:
        data, transform = rasterio.mask.mask(src, [AOI_BACK], crop=True, filled=False)
    values = data[0].astype(np.float64) * SCALE
    return np.where(np.ma.getmaskarray(data[0]) | (data[0].data == 0), np.nan, values), transform


def onto(band: str, shape_, transform):
    with rasterio.open(S2_DIR / f"{band}.tif") as src:
        out = np.zeros(shape_, np.uint16)
        reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=src.crs, resampling=Resampling.nearest)
    return np.where(out == 0, np.nan, out * SCALE)


def test_savi_applies_the_radiometry_then_the_catalogue_formula_with_a_chosen_constant(scenes):
    coll_scenes, options = scenes
    red, transform = crop("B04")
    nir, _ = crop("B08")
    want = 1.5 * (nir - red) / (nir + red + 0.5)  # SAVI with Huete's L = 0.5 (the catalogue's default is 1)
    result = aoi_index(coll_scenes, {"field": AOI}, "SAVI", DataSources.SENTINEL2, constants={"L": 0.5},
                       reader_options=options)
    assert not result.failures and len(result.rasters) == 1
    (got,) = result.rasters
    assert tuple(got.transform)[:6] == pytest.approx(tuple(transform)[:6])
    assert np.isfinite(want).sum() > 50_000
    np.testing.assert_array_equal(np.isfinite(got.data), np.isfinite(want))
    np.testing.assert_allclose(got.data[np.isfinite(want)], want[np.isfinite(want)], rtol=2e-6, atol=1e-6)


def test_ndmi_brings_the_20_m_swir_band_onto_the_10_m_grid(scenes):
    coll_scenes, options = scenes
    nir, transform = crop("B08")
    swir = onto("B11", nir.shape, transform)
    want = (nir - swir) / (nir + swir)
    (got,) = aoi_index(coll_scenes, {"field": AOI}, "ndmi", DataSources.SENTINEL2, reader_options=options).rasters
    both = np.isfinite(want)
    assert both.sum() > 50_000
    np.testing.assert_array_equal(np.isfinite(got.data), both)
    np.testing.assert_allclose(got.data[both], want[both], rtol=2e-6, atol=1e-6)


def test_bands_map_through_common_names_per_source():
    s2 = standard_bands(DataSources.SENTINEL2)
    assert (s2["R"], s2["N"], s2["N2"], s2["S1"], s2["RE1"]) == ("B04", "B08", "B8A", "B11", "B05")
    assert standard_bands(DataSources.PC_SENTINEL2)["N"] == "B08"  # asset keys are the codes there
    landsat = standard_bands(DataSources.LANDSAT)
    assert (landsat["R"], landsat["N"], landsat["S2"]) == ("red", "nir08", "swir22")  # OLI band 5 is Landsat's NIR
    assert "RE1" not in landsat


def test_an_index_a_source_cannot_compute_names_the_missing_band():
    with pytest.raises(ArgumentError, match=r"NDREI needs band\(s\) RE1.*landsat"):
        spectral_index("NDREI").source_bands(DataSources.LANDSAT)
    assert "NDREI" in indices_for(DataSources.SENTINEL2) and "NDREI" not in indices_for(DataSources.LANDSAT)
    assert {"EVI", "NDWI", "NBR", "NDMI", "SAVI", "NDVI"} <= set(indices_for(DataSources.LANDSAT))


def test_an_unknown_index_is_an_argument_error_with_suggestions():
    with pytest.raises(RasteretError, match="did you mean.*NDVI"):
        spectral_index("NDVJ")


def test_evi_uses_the_catalogue_constants_and_masks_non_finite_results():
    n, r, b = np.array([0.4, 0.3, 0.0]), np.array([0.05, 0.3, 0.0]), np.array([0.03, 0.1, 0.0])
    want = 2.5 * (n - r) / (n + 6 * r - 7.5 * b + 1)
    got = compute_index("EVI", {"N": n, "R": r, "B": b})
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6)
    ratio = compute_index("NDVI", {"N": np.array([0.0, 0.5]), "R": np.array([0.0, 0.1])})
    assert np.isnan(ratio[0]) and ratio[1] == pytest.approx(2 / 3)
