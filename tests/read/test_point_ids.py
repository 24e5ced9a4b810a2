"""Point ids follow the README's one rule: a GeoDataFrame's ``name``, then ``id`` column, else its index."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import Point

from rasteret_core.read.points import named_points

POINTS = [Point(77.55, 13.04), Point(77.61, 12.96)]


def test_a_name_column_gives_the_ids():
    frame = gpd.GeoDataFrame({"name": ["well_a", "well_b"], "id": [7, 8]}, geometry=POINTS, crs=4326)
    assert list(named_points(frame)) == ["well_a", "well_b"]


def test_an_id_column_then_the_index():
    assert list(named_points(gpd.GeoDataFrame({"id": [7, 8]}, geometry=POINTS, crs=4326))) == ["7", "8"]
    indexed = gpd.GeoDataFrame(geometry=POINTS, crs=4326, index=["north", "south"])
    assert list(named_points(indexed)) == ["north", "south"]


from tests.read.test_rasteret_api import FIELD_A, items_file, rasteret  # noqa: E402,F401 - fixtures


def test_swapped_lat_lon_points_are_pointed_out_not_silently_empty(rasteret):
    import pytest

    from rasteret_core.errors import EmptyResultWarning

    lon, lat = FIELD_A.centroid.x, FIELD_A.centroid.y
    with pytest.warns(EmptyResultWarning, match="with x and y swapped they would"):
        samples = rasteret.sample_points({"well": (lat, lon)}, ["B04"])
    assert len(samples.to_arrow()) == 0
    assert len(rasteret.sample_points({"well": (lon, lat)}, ["B04"]).to_arrow()) > 0  # the right order reads
