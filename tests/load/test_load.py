"""load(): lazy Datasets on a chosen grid equal the eager read and rasterio's reproject, read
only tiles (no header request), pick overviews by resolution and build graphs without I/O."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (ds.rio)
import shapely
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from hypothesis import given, HealthCheck, settings, strategies as st
from rasterio.warp import reproject, transform, transform_geom
from shapely.geometry import shape

from rasteret_core.errors import LoadError
from rasteret_core.load import chunk_tasks, load
from rasteret_core.read import read_aois
from tests.load.conftest import only_tile_ranges, S2_DIR, tile_spans

NO_CACHE = 0  # tests that count bytes must not be served from an earlier test's tile cache


def utm_box(x0, y0, x1, y1):
    return shape(transform_geom("EPSG:32629", "EPSG:4326", shapely.box(x0, y0, x1, y1).__geo_interface__))


def rasterio_reproject(band, geobox: GeoBox, resampling=Resampling.nearest, overview_level=None, tolerance=0.125):
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(S2_DIR / f"{band}.tif", **kwargs) as src:
        out = np.zeros(geobox.shape, src.dtypes[0])
        reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, src_nodata=src.nodata,
                  dst_transform=geobox.affine, dst_crs=geobox.crs.to_wkt(), dst_nodata=src.nodata,
                  resampling=resampling, tolerance=tolerance)
    return out


def test_native_grid_load_equals_the_eager_read(s2_collection, s2_options, store):
    aoi = utm_box(231000, 2711000, 283000, 2766000)  # across tile edges, inside the scene
    scenes = s2_collection.scenes(bands=["B04", "B08"])[:1]
    eager = read_aois(scenes, {"aoi": aoi}, ["B04", "B08"], reader_options=s2_options).rasters
    ds = load(s2_collection, ["B04", "B08"], geometry=aoi, chunks={"x": 200, "y": 200}, reader_options=s2_options)
    assert ds.sizes["time"] == 2 and ds.rio.crs.to_epsg() == 32629
    for raster in eager:
        height, width = raster.data.shape
        xs = raster.transform.c + (np.arange(width) + 0.5) * raster.transform.a
        ys = raster.transform.f + (np.arange(height) + 0.5) * raster.transform.e
        lazy = ds[raster.band].isel(time=0).sel(x=xs, y=ys).values
        inside = ~raster.outside
        assert inside.sum() > 100_000
        np.testing.assert_array_equal(lazy[inside], raster.data[inside])
    with rasterio.open(S2_DIR / "B04.tif") as src:  # the native grid is the file's pixel grid
        assert (ds.rio.transform().c - src.transform.c) % 100 == 0 and (ds.rio.transform().f - src.transform.f) % 100 == 0


def test_building_the_graph_reads_nothing_and_it_has_one_task_per_chunk_and_date(s2_collection, s2_options, store):
    ds = load(s2_collection, ["B04", "SCL"], chunks={"x": 256, "y": 256}, reader_options=s2_options)
    assert store.stats.requests == 0
    chunks_per_step = int(np.prod([len(c) for c in ds.B04.chunks[1:]]))
    for name in ("B04", "SCL"):
        assert len(ds[name].data.__dask_graph__()) == ds.sizes["time"] * chunks_per_step
    blob = pickle.dumps(dict(ds.B04.data.__dask_graph__()))
    assert len(blob) < 2_000_000  # headers travel once per task, not whole collections
    tasks = chunk_tasks(ds)
    some = next(t for t in tasks.values() if t.sources)
    assert some.sources[0].tiles and all(end > start for start, end in some.sources[0].byte_ranges)


def test_computing_makes_only_tile_requests(s2_collection, s2_options, store):
    ds = load(s2_collection, ["B04"], chunks={"x": 300, "y": 300}, reader_options=s2_options,
              tile_cache_bytes=32 * 1024 * 1024 + 3)  # a fresh cache: this process's runtime of its own
    ds.B04.isel(time=0).compute(scheduler="threads")
    records = store.requests_for("*B04.tif")
    assert records and only_tile_ranges(records, tile_spans(s2_collection))
    tiles_needed = {(s.header.url, t) for t in chunk_tasks(ds.isel(time=[0])).values() for s in t.sources for t in s.tiles}
    assert len(records) <= len(tiles_needed)


def test_neighbouring_chunks_share_their_tiles_within_a_worker(s2_collection, s2_options, store):
    # 128 px chunks under 512 px tiles: every tile is needed by up to 16 chunks
    ds = load(s2_collection, ["B08"], chunks={"x": 128, "y": 128}, reader_options=s2_options,
              tile_cache_bytes=64 * 1024 * 1024 + 1)
    ds.B08.isel(time=0).compute(scheduler="threads")
    records = store.requests_for("*B08.tif")
    fetched = [r.range for r in records]
    assert len(fetched) == len(set(fetched)) and len(records) <= 9  # the image has 3 x 3 tiles


def nearest_truth(band, geobox: GeoBox, overview_level=None):
    """Nearest resampling by its definition, computed apart from the code under test: each
    output pixel takes the source pixel containing its centre, the centres carried into the
    file's CRS by GDAL's own point transform (``rasterio.warp.transform``)."""
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(S2_DIR / f"{band}.tif", **kwargs) as src:
        data, inverse, nodata = src.read(1), ~src.transform, src.nodata
    rows, cols = np.indices(geobox.shape) + 0.5
    xs, ys = geobox.affine * (cols.ravel(), rows.ravel())
    sx, sy = transform(geobox.crs.to_wkt(), "EPSG:32629", xs, ys)
    px, py = inverse * (np.asarray(sx), np.asarray(sy))
    ix, iy = np.floor(px).astype(int), np.floor(py).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < data.shape[1]) & (iy < data.shape[0])
    out = np.full(ix.shape, nodata, data.dtype)
    out[inside] = data[iy[inside], ix[inside]]
    return out.reshape(geobox.shape)


@pytest.mark.parametrize("crs, resolution", [("EPSG:32629", 30), ("EPSG:32629", 250)])
def test_a_load_on_the_files_crs_equals_rasterio_reproject_nearest_exactly(s2_collection, s2_options, crs, resolution):
    ds = load(s2_collection, ["B04"], crs=crs, resolution=resolution, chunks={"x": 700, "y": 700},
              reader_options=s2_options, anchor="center")
    (level,) = {s.overview for t in chunk_tasks(ds).values() for s in t.sources}
    expected = rasterio_reproject("B04", ds.odc.geobox, overview_level=level)
    got = ds.B04.isel(time=0).values
    assert (expected != 0).sum() > 100_000
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("crs, resolution", [("EPSG:3857", 150), ("EPSG:32628", 100)])
def test_a_reprojected_load_takes_the_source_pixel_under_each_centre(s2_collection, s2_options, crs, resolution):
    ds = load(s2_collection, ["B04"], crs=crs, resolution=resolution, chunks={"x": 300, "y": 300},
              reader_options=s2_options)
    got = ds.B04.isel(time=0).values
    expected = nearest_truth("B04", ds.odc.geobox)
    assert (expected != 0).sum() > 300_000
    np.testing.assert_array_equal(got, expected)
    # GDAL's warper approximates the transform along rows: it agrees except near pixel edges
    warped = rasterio_reproject("B04", ds.odc.geobox, tolerance=0)
    assert 0.9 < (warped == got).mean() < 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_y=st.integers(17, 400), chunk_x=st.integers(17, 400), shift_x=st.integers(-7, 7),
       shift_y=st.integers(-7, 7), crs=st.sampled_from(["EPSG:3857", "EPSG:32629"]))
def test_the_chunks_never_change_the_values(s2_collection, s2_options, chunk_y, chunk_x, shift_x, shift_y, crs):
    # a grid whose origin is shifted by a fraction of an output pixel, cut into random chunks
    res = 130
    box = GeoBox.from_bbox((240_000 + shift_x * 13.7, 2_720_000 + shift_y * 11.3, 300_000, 2_780_000),
                           "EPSG:32629", resolution=res)
    if crs != "EPSG:32629":
        box = GeoBox.from_bbox(box.extent.to_crs(crs).boundingbox, crs, resolution=res)
    whole = load(s2_collection, ["B04"], geobox=box, chunks={"x": -1, "y": -1}, reader_options=s2_options)
    cut = load(s2_collection, ["B04"], geobox=box, chunks={"x": chunk_x, "y": chunk_y}, reader_options=s2_options)
    expected = nearest_truth("B04", box)
    got = cut.B04.isel(time=0).values
    np.testing.assert_array_equal(got, whole.B04.isel(time=0).values)
    np.testing.assert_array_equal(got, expected)


def test_per_band_resampling_bilinear_matches_reproject_within_one_dn(s2_collection, s2_options):
    ds = load(s2_collection, ["B04", "SCL"], crs="EPSG:3857", resolution=150, chunks={"x": -1, "y": -1},
              resampling={"B04": "bilinear", "*": "nearest"}, reader_options=s2_options)
    assert ds.B04.attrs["resampling"] == "bilinear" and ds.SCL.attrs["resampling"] == "nearest"
    want = rasterio_reproject("B04", ds.odc.geobox, Resampling.bilinear)
    got = ds.B04.isel(time=0).values
    both = (want != 0) & (got != 0)
    assert both.sum() > 300_000 and np.abs(got[both].astype(int) - want[both]).max() <= 1
    np.testing.assert_array_equal(ds.SCL.isel(time=0).values, nearest_truth("SCL", ds.odc.geobox))


def test_coarser_output_reads_the_overview_and_far_fewer_bytes(s2_collection, s2_options, store):
    native = load(s2_collection, ["B04"], reader_options=s2_options, tile_cache_bytes=NO_CACHE).isel(time=[0])
    native.B04.compute(scheduler="threads")
    full_bytes = store.stats.bytes_sent
    store.reset_stats()
    coarse = load(s2_collection, ["B04"], resolution=400, reader_options=s2_options, tile_cache_bytes=NO_CACHE)
    coarse = coarse.isel(time=[0])
    got = coarse.B04.isel(time=0).values
    coarse_bytes = store.stats.bytes_sent
    assert {s.overview for t in chunk_tasks(coarse).values() for s in t.sources} == {1}  # the 4x overview
    assert coarse_bytes * 10 <= full_bytes
    np.testing.assert_array_equal(got, nearest_truth("B04", coarse.odc.geobox, overview_level=1))


def test_groupby_solar_day_time_and_property(s2_collection, s2_options):
    by_day = load(s2_collection, ["B04"], reader_options=s2_options)
    assert list(by_day.scene_id.values) == ["S2A_29RKH_20200219_0_L2A", "S2A_29RKH_20200224_0_L2A"]
    one = load(s2_collection, ["B04"], groupby="s2:product_type", reader_options=s2_options)
    assert one.sizes["time"] == 1 and one.scene_id.values[0].count(",") == 1
    every = load(s2_collection, ["B04"], groupby=None, reader_options=s2_options)  # as the eager mosaic: one step
    assert every.sizes["time"] == 1 and str(every.time.values[0]).startswith("2020-02-19")


def test_dtype_and_nodata_options(s2_collection, s2_options):
    ds = load(s2_collection, ["B04"], dtype="int32", nodata=-1, bbox=(-12.5, 24.0, -10.0, 25.5),
              reader_options=s2_options, chunks={"x": -1, "y": -1})
    values = ds.B04.isel(time=0).values
    assert values.dtype == np.int32 and ds.B04.attrs["nodata"] == -1
    assert (values == -1).sum() > 0 and (values > 0).sum() > 1_000_000


def test_physical_values_follow_the_harvest_rule(s2_collection, s2_options):
    pytest.importorskip("rasteret_core.radiometry")
    raw = load(s2_collection, ["B04"], reader_options=s2_options).B04.isel(time=0).values
    ds = load(s2_collection, ["B04"], physical=True, reader_options=s2_options)
    asset = s2_collection.scenes(bands=["B04"])[0].bands["B04"]
    got = ds.B04.isel(time=0).values
    assert got.dtype == np.float32 and np.isnan(got[raw == 0]).all()
    want = raw.astype(np.float64) * (asset.scale if asset.scale is not None else 1) + (asset.offset or 0)
    np.testing.assert_allclose(got[raw != 0], want[raw != 0].astype(np.float32), rtol=1e-6)


def test_credentials_never_go_into_the_graph(s2_collection):
    with pytest.raises(LoadError, match="AWS chain"):
        load(s2_collection, ["B04"], reader_options={"aws_access_key_id": "AKIA", "aws_secret_access_key": "x"})


def test_an_area_outside_every_scene_says_so(s2_collection):
    with pytest.raises(LoadError, match="nothing to load"):
        load(s2_collection, ["B04"], bbox=(100.0, 10.0, 100.1, 10.1))


def test_like_reuses_another_datasets_grid(s2_collection, s2_options):
    first = load(s2_collection, ["B04"], crs="EPSG:3857", resolution=300, reader_options=s2_options)
    second = load(s2_collection, ["B08"], like=first, reader_options=s2_options)
    assert second.odc.geobox == first.odc.geobox
    with pytest.raises(Exception, match="fixes the grid"):
        load(s2_collection, ["B08"], like=first, resolution=10, reader_options=s2_options)


def test_collection_and_rasteret_expose_load(s2_collection, s2_options):
    ds = load(s2_collection, ["B04"], resolution=400, reader_options=s2_options)
    assert ds.B04.dims == ("time", "y", "x") and ds.sizes["time"] == 2


def test_loads_that_differ_only_in_a_setting_never_share_a_graph_name(s2_collection, s2_options):
    """A distributed scheduler reuses results by key: a load with another warp tolerance or
    resampling must not be taken for the first one."""
    names = {load(s2_collection, ["B04"], crs="EPSG:4326", resolution=0.002, reader_options=s2_options,
                  warp_tolerance=tol, resampling=method).B04.data.name
             for tol, method in [(0.125, "nearest"), (0.0, "nearest"), (0.125, "bilinear")]}
    assert len(names) == 3
