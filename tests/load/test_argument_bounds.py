"""Impossible or absurd arguments are named at once, before anything is planned or read:
resolution, grid size, the number of load tasks, point neighbourhoods, cloud-cover filters."""

from __future__ import annotations

import math

import pytest
import shapely

from rasteret_core.errors import ArgumentError, GridError, LoadError, RasteretError
from rasteret_core.load import load
from rasteret_core.read.points import MAX_NEIGHBOURHOOD, sample_points


def centre(collection):
    scene = collection.scenes()[0]
    return scene, scene.geometry.centroid


@pytest.mark.parametrize("resolution", [0, math.nan, -10, math.inf, (10, 0)])
def test_an_impossible_resolution_is_an_argument_error(s2_collection, resolution):
    with pytest.raises(GridError, match="resolution") as caught:
        load(s2_collection, ["B04"], resolution=resolution)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RasteretError)


def test_an_absurd_grid_is_explained_not_built(s2_collection):
    scene, _ = centre(s2_collection)
    with pytest.raises(GridError, match="pixels per time step"):
        load(s2_collection, ["B04"], bbox=scene.geometry.bounds, resolution=0.01)


def test_a_graph_over_the_task_limit_is_refused_before_planning(s2_collection):
    scene, _ = centre(s2_collection)
    with pytest.raises(LoadError, match="tasks"):
        load(s2_collection, ["B04"], bbox=scene.geometry.bounds, resolution=0.5, chunks={"x": 16, "y": 16})


@pytest.mark.parametrize("value", [-5, math.nan, "many"])
def test_an_impossible_cloud_cover_filter_is_an_argument_error(s2_collection, value):
    with pytest.raises(ArgumentError, match="cloud_cover_lt"):
        s2_collection.scenes(cloud_cover_lt=value)


@pytest.mark.parametrize("k", [99999, MAX_NEIGHBOURHOOD + 2, 0, 4])
def test_a_neighbourhood_out_of_bounds_is_an_argument_error(s2_collection, s2_options, k):
    scene, point = centre(s2_collection)
    with pytest.raises(ArgumentError, match="neighbourhood"):
        sample_points([scene], {"p": point}, ["B04"], neighbourhood=k, reader_options=s2_options)
