"""One memory budget for eager results: a valid but large AOI is refused before its mosaic is
allocated, with the size in pixels and bytes and the alternative; the budget parser accepts
the units users write."""

from __future__ import annotations

import tracemalloc

import pytest
import shapely
from hypothesis import given, strategies as st

from rasteret_core.budget import ENV, parse_size
from rasteret_core.errors import MemoryBudgetError
from rasteret_core.read import read_aois
from rasteret_core.read.xarray import per_geometry_datasets


def around(scene, degrees: float):
    return shapely.box(*scene.geometry.centroid.buffer(degrees).bounds)


def test_a_large_aoi_is_refused_before_its_mosaic_is_allocated(s2_collection, s2_options, monkeypatch, record_property):
    scene = s2_collection.scenes()[0]
    aoi = {"big": around(scene, 2.0)}  # 2 degrees around one scene: most of the grid holds no data
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    monkeypatch.setenv(ENV, "8MiB")
    tracemalloc.start()
    with pytest.raises(MemoryBudgetError, match=r"pixels\), more than the memory budget of 8 MiB.*load\(\.\.\., chunks"):
        per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    record_property("reliability.peak_python_alloc_mib_budget_refusal", round(peak / 2**20, 1))
    assert peak < 8 * 2**20


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
def test_a_world_sized_aoi_reads_the_scene_then_is_refused_by_the_budget_not_dropped(s2_collection, s2_options, box):
    scene = s2_collection.scenes()[0]
    assert shapely.box(*box).contains(scene.geometry)
    aoi = {"world": shapely.box(*box)}
    result = read_aois([scene], aoi, ["B04"], reader_options=s2_options, fill_outside=False)
    # before: the box projected to the scene's UTM zone collapsed to a line, 0 windows were read
    # and the diagnosis said the geometry was smaller than a pixel
    assert not result.failures and [r.scene_id for r in result.rasters] == [scene.id]
    with pytest.raises(MemoryBudgetError, match="the mosaic of 'world'"):
        per_geometry_datasets(result.rasters, ["B04"], [scene], aoi)
