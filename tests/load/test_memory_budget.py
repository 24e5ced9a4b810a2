"""One memory budget for eager results: an AOI far larger than its scenes costs the scenes'
pixels (the mosaic grid is rasterio.mask's crop of the scenes, checked against rasterio); a
crop beyond the budget is refused before allocation, with the size in pixels and bytes and
the alternative; the budget parser accepts the units users write."""

from __future__ import annotations

import tracemalloc

import pytest
import rasterio
import shapely
import shapely.geometry
from hypothesis import given, strategies as st

from rasteret_core.budget import ENV, parse_size
from rasteret_core.errors import MemoryBudgetError
from rasteret_core.read import read_aois
from rasteret_core.read.xarray import per_geometry_datasets
from tests.load.conftest import S2_DIR


def around(scene, degrees: float):
    return shapely.box(*scene.geometry.centroid.buffer(degrees).bounds)


def mask_truth(geometry, band: str = "B04"):
    """rasterio.mask(crop=True) of the scene's file: the crop (nodata outside the AOI) and the
    AOI's pixel count on the file's lattice, uncut by the image's edges."""
    import numpy as np
    import rasterio
    import rasterio.mask
    from affine import Affine
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom

    with rasterio.open(S2_DIR / f"{band}.tif") as src:
        geom = shapely.geometry.shape(transform_geom("EPSG:4326", src.crs, shapely.geometry.mapping(geometry)))
        crop, _ = rasterio.mask.mask(src, [geom], crop=True, nodata=src.nodata)
        t = src.transform
    x0, y0, x1, y1 = geom.bounds
    col0, row0 = int(np.floor((x0 - t.c) / t.a)) - 1, int(np.floor((y1 - t.f) / t.e)) - 1
    virtual = Affine(t.a, 0, t.c + col0 * t.a, 0, t.e, t.f + row0 * t.e)
    shape = (int((y1 - y0) / -t.e) + 3, int((x1 - x0) / t.a) + 3)
    aoi_pixels = int((~geometry_mask([geom], out_shape=shape, transform=virtual)).sum())
    return crop[0], aoi_pixels


@pytest.mark.parametrize("degrees", [1.0, 2.0])
def test_an_aoi_far_larger_than_its_scene_costs_the_scenes_pixels_not_its_own(s2_collection, s2_options, monkeypatch,
                                                                             degrees):
    scene = s2_collection.scenes()[0]
    aoi = {"big": around(scene, degrees)}  # 2 degrees: a 4,000 x 4,000 window, most of it beyond the scene
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    monkeypatch.setenv(ENV, "8MiB")  # the scene's mosaic fits; the AOI's whole window would not
    ds = per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)["big"]
    crop, aoi_pixels = mask_truth(aoi["big"])
    assert aoi_pixels * 5 > 8 * 2**20  # the uncut mosaic would have been refused
    assert ds.B04.shape[1:] == crop.shape
    assert (ds.B04.values[0] == crop).all()
    covered = int((crop != 0).sum())
    assert float(ds.coverage[0]) == pytest.approx(covered / aoi_pixels, rel=1e-9)


def test_beyond_the_budget_the_scenes_crop_is_refused_before_allocation(s2_collection, s2_options, monkeypatch,
                                                                       record_property):
    scene = s2_collection.scenes()[0]
    aoi = {"big": around(scene, 2.0)}
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    monkeypatch.setenv(ENV, "1MiB")
    tracemalloc.start()
    with pytest.raises(MemoryBudgetError, match=r"pixels\), more than the memory budget of 1 MiB.*load\(\.\.\., chunks"):
        per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    record_property("reliability.peak_python_alloc_mib_budget_refusal", round(peak / 2**20, 1))
    assert peak < 2**20


def test_under_the_budget_the_same_aoi_reads(s2_collection, s2_options, monkeypatch):
    scene = s2_collection.scenes()[0]
    aoi = {"small": around(scene, 0.05)}
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    monkeypatch.setenv(ENV, "8MiB")
    assert per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)["small"].B04.size


@pytest.mark.parametrize("text, expected", [("4GiB", 4 * 2**30), ("512 MB", 512 * 10**6), ("1e9", 10**9),
                                            ("2048", 2048), (4096, 4096)])
def test_budget_sizes_users_write(text, expected):
    assert parse_size(text) == expected


@given(st.text(max_size=12))
def test_any_text_is_a_size_or_a_value_error(text):
    try:
        assert parse_size(text) >= 1
    except ValueError:
        pass


@pytest.mark.parametrize("box", [(-180, -90, 180, 90), (-180, 0, 0, 90)])  # the world, the north-west quarter
def test_a_world_sized_aoi_gives_the_scenes_pixels(s2_collection, s2_options, box):
    scene = s2_collection.scenes()[0]
    assert shapely.box(*box).contains(scene.geometry)
    aoi = {"world": shapely.box(*box)}
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    # before: the box projected to the scene's UTM zone collapsed to a line, 0 windows were read
    # and the diagnosis said the geometry was smaller than a pixel; then the budget refused it
    assert not result.failures and [r.scene_id for r in result.rasters] == [scene.id]
    ds = per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)["world"]
    with rasterio.open(S2_DIR / "B04.tif") as src:
        whole = src.read(1)
    assert (ds.B04.values[0] == whole).all()
    assert 0 < float(ds.coverage[0]) < 1e-3  # the scene is a speck of the (clipped) world
