"""The high-level API of the seed, end to end on a local items file: build once, then query."""

from __future__ import annotations

import json

import rioxarray  # noqa: F401  (registers ds.rio, to check CRS interoperability)

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import shape

from rasteret_core import DataSources, Rasteret, RasteretError, save_per_geometry
from rasteret_core.products.ndvi import aoi_ndvi, ndvi
from rasteret_core.raster.masks import scl_cloud_mask
from tests.collection.conftest import EPSG, make_s2_scenes, S2_BAND_MAP

DATES = ("2024-01-01", "2024-01-31")


@pytest.fixture(scope="module")
def items_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("api_scenes")
    items = make_s2_scenes(root / "scenes")
    path = root / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


@pytest.fixture
def rasteret(items_file, tmp_path):
    source = DataSources.from_items_file(items_file, S2_BAND_MAP, name="s2-local", short_name="s2local")
    r = Rasteret("testaoi", source, DATES, workspace_dir=tmp_path / "ws", progress=False)
    report = r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0))
    assert report.scenes == 6
    return r


def utm_box_lonlat(x0, y0, x1, y1):
    return shape(transform_geom(f"EPSG:{EPSG}", "EPSG:4326", shapely.box(x0, y0, x1, y1).__geo_interface__))


FIELD_A = utm_box_lonlat(771003, 1436011, 772507, 1437493)   # inside tile 0
FIELD_B = utm_box_lonlat(781500, 1437000, 782900, 1438100)   # inside tile 1


def expected(path, geom):
    with rasterio.open(path) as src:
        out, transform = rasterio.mask.mask(src, [transform_geom("EPSG:4326", src.crs, geom.__geo_interface__)], crop=True)
    return out[0], transform


def test_collection_is_listed_and_loaded_by_name(rasteret, tmp_path):
    names = [c["name"] for c in Rasteret.list_collections(tmp_path / "ws")]
    assert names == [rasteret.name] and rasteret.name == "testaoi_202401-01_s2local"
    again = Rasteret.load_collection(rasteret.name, tmp_path / "ws")
    assert len(again.collection) == 6
    with pytest.raises(ValueError, match="no collection named"):
        Rasteret.load_collection("nope", tmp_path / "ws")


def test_get_xarray_per_geometry_equals_rasterio_mask(rasteret, items_file):
    datasets = rasteret.get_xarray({"a": FIELD_A, "b": FIELD_B}, ["B04", "B08"], per_geometry=True)
    assert set(datasets) == {"a", "b"}
    ds = datasets["a"]
    assert ds.B04.dims == ("time", "y", "x") and ds.sizes["time"] == 3
    assert ds.rio.crs.to_epsg() == EPSG
    for t, scene_id in zip(ds.time.values, ds.scene_id.values):
        ref, transform = expected(items_file.parent / "scenes" / scene_id / "B04.tif", FIELD_A)
        np.testing.assert_array_equal(ds.B04.sel(time=t).values, ref)
        assert ds.x.values[0] == pytest.approx(transform.c + transform.a / 2)
        assert ds.y.values[0] == pytest.approx(transform.f + transform.e / 2)
    assert rasteret.last_stats.header_requests == 0 and rasteret.last_stats.requests > 0


def test_cloud_and_date_filters_apply_to_queries(rasteret):
    ds = rasteret.get_xarray({"a": FIELD_A}, ["B04"], cloud_cover_lt=50, date_range=("2024-01-01", "2024-01-12"),
                             per_geometry=True)["a"]
    assert ds.sizes["time"] == 2  # 5th (5 %) and 10th (12.5 %); the 15th is 80 % cloudy


def test_stacked_form_has_geometry_time_y_x(rasteret):
    ds = rasteret.get_xarray({"a": FIELD_A, "b": FIELD_B}, ["B04"])
    assert ds.B04.dims == ("geometry", "time", "y", "x")
    assert list(ds.geometry.values) == ["a", "b"]
    assert ds.rio.crs.to_epsg() == EPSG


def test_far_apart_geometries_are_refused_in_one_grid(rasteret):
    far = utm_box_lonlat(770100, 1439800, 770200, 1439900)
    other = utm_box_lonlat(785000, 1435000, 785100, 1435100)
    with pytest.raises(RasteretError, match="per_geometry=True"):
        rasteret.get_xarray({"a": far, "b": other}, ["B04"])
    assert set(rasteret.get_xarray({"a": far, "b": other}, ["B04"], per_geometry=True)) == {"a", "b"}


def test_unknown_band_lists_the_available_ones(rasteret):
    with pytest.raises(ValueError, match="B04"):
        rasteret.get_xarray({"a": FIELD_A}, ["B99"])


def test_get_gdf_has_one_row_per_geometry_scene_band(rasteret):
    gdf = rasteret.get_gdf({"a": FIELD_A}, ["B04", "B08"])
    assert len(gdf) == 3 * 2 and set(gdf.band) == {"B04", "B08"} and gdf.crs.to_epsg() == 4326


def test_queries_do_not_modify_the_collection(rasteret):
    before = {p: p.stat().st_mtime_ns for p in __import__("pathlib").Path(rasteret.root).rglob("*")}
    rasteret.get_xarray({"a": FIELD_A}, ["B04"], per_geometry=True)
    after = {p: p.stat().st_mtime_ns for p in __import__("pathlib").Path(rasteret.root).rglob("*")}
    assert before == after


def test_save_per_geometry_writes_one_cog_per_geometry_and_date(rasteret, tmp_path):
    ds = rasteret.get_xarray({"a": FIELD_A, "b": FIELD_B}, ["B04"], per_geometry=True)
    paths = save_per_geometry(ds, tmp_path / "out", file_prefix="red_", data_var="B04")
    assert len(paths) == 6
    with rasterio.open(paths[0]) as src:
        part = ds["a"]
        np.testing.assert_array_equal(src.read(1), part.B04.isel(time=0).values)
        assert src.crs.to_epsg() == EPSG and src.nodata == 0
        assert src.transform.c == pytest.approx(float(part.x[0]) - 5)


def test_ndvi_equals_numpy_on_rasterio_reads(rasteret, items_file):
    scenes = rasteret.collection.scenes(bands=["B04", "B08", "SCL"])
    result = aoi_ndvi(scenes, {"a": FIELD_A}, red="B04", nir="B08", mask="SCL")
    assert len(result.rasters) == 3 and not result.failures
    for raster in result.rasters:
        folder = items_file.parent / "scenes" / raster.scene_id
        red, transform = expected(folder / "B04.tif", FIELD_A)
        nir, _ = expected(folder / "B08.tif", FIELD_A)
        with rasterio.open(folder / "SCL.tif") as src:
            scl = np.empty(red.shape, dtype=np.uint8)
            rasterio.warp.reproject(src.read(1), scl, src_transform=src.transform, src_crs=src.crs,
                                    dst_transform=transform, dst_crs=src.crs, resampling=rasterio.enums.Resampling.nearest)
        r = red * 0.0001 - 0.1
        n = nir * 0.0001 - 0.1
        with np.errstate(divide="ignore", invalid="ignore"):
            want = ((n - r) / (n + r)).astype(np.float32)
        outside = rasterio.features.geometry_mask(
            [transform_geom("EPSG:4326", f"EPSG:{EPSG}", FIELD_A.__geo_interface__)], out_shape=red.shape, transform=transform)
        want[(red == 0) | (nir == 0) | scl_cloud_mask(scl) | outside | (np.abs(want) > 1)] = np.nan
        np.testing.assert_allclose(raster.data, want, rtol=1e-6, equal_nan=True)
        assert np.isfinite(raster.data).any()


def test_ndvi_function_masks_nodata_clouds_and_range():
    red = np.array([[1000, 0, 1200, 3000]], dtype=np.uint16)
    nir = np.array([[3000, 2000, 1100, 3000]], dtype=np.uint16)
    cloud = np.array([[False, False, True, False]])
    out = ndvi(red, nir, red_scale=0.0001, red_offset=-0.1, nir_scale=0.0001, nir_offset=-0.1,
               red_nodata=0, nir_nodata=0, cloud_mask=cloud)
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx((0.2 - 0.0) / (0.2 + 0.0)) and np.isnan(out[0, 1]) and np.isnan(out[0, 2])
    assert out[0, 3] == 0
