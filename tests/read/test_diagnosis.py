"""Every read returns or raises with its diagnosis: which step emptied a result, every failure
with its cause, and input mistakes (projected coordinates, swapped axes, a string of bands)
named as such."""

from __future__ import annotations

import json
import shutil
import socket
import warnings

import geopandas as gpd
import pytest
import shapely

from rasteret_core import DataSources, Rasteret
from rasteret_core.errors import (
    EmptyResultError, EmptyResultWarning, GeometryError, MissingBandWarning, PartialReadWarning, ReadError,
)
from rasteret_core.raster.geometry import named_geometries, swap_axes
from rasteret_core.read.diagnosis import GeometryDatasets
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.collection.conftest import make_s2_scenes, S2_BAND_MAP
from tests.read.test_rasteret_api import DATES, FIELD_A, FIELD_B, items_file, rasteret, utm_box_lonlat


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def built(tmp_path, items, name="diag", local_roots=None):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    source = DataSources.from_items_file(path, S2_BAND_MAP, name="s2-local", short_name="s2local")
    # local hrefs outside the items file's folder are read only from folders the caller allows
    options = {"local_roots": tuple(local_roots)} if local_roots else None
    r = Rasteret(name, source, DATES, workspace_dir=tmp_path / "ws", progress=False, reader_options=options)
    r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0))
    return r


def test_every_read_failing_raises_with_the_connection_cause(tmp_path):
    scenes = tmp_path / "scenes"
    items = make_s2_scenes(scenes, href_prefix="s3://scenes")
    with ObjectStoreServer(buckets={"scenes": scenes}) as server:
        r = Rasteret("unreach", DataSources.from_items_file(_write(tmp_path, items), S2_BAND_MAP, name="s2-local",
                                                             short_name="s2local"),
                     DATES, workspace_dir=tmp_path / "ws", progress=False,
                     reader_options={"endpoint_url": server.endpoint_url})
        assert r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0)).scenes == 6
    port = closed_port()
    r.reader_options = {"endpoint_url": f"http://127.0.0.1:{port}", "retries": 0}
    with pytest.raises(ReadError, match=f"all 3 read\\(s\\) failed, first causes: connection failed .*3 read.*s3:// URLs were read from http://127.0.0.1:{port}") as info:
        r.get_xarray({"a": FIELD_A}, ["B04"], per_geometry=True)
    assert info.value.diagnosis.rasters == 0 and len(info.value.diagnosis.failures) == 3
    with pytest.raises(ReadError, match="127.0.0.1"):  # the stacked form gives the same cause, not "no scene"
        r.get_xarray({"a": FIELD_A}, ["B04"])


def _write(tmp_path, items):
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


def test_dates_without_scenes_are_an_explicit_empty_result(rasteret):
    with pytest.warns(EmptyResultWarning, match="no scene in collection .* between 2024-02-01 and 2024-02-28"):
        out = rasteret.get_xarray({"a": FIELD_A}, ["B04"], date_range=("2024-02-01", "2024-02-28"), per_geometry=True)
    assert out == {} and isinstance(out, GeometryDatasets) and out.diagnosis.empty_step == "dates"
    assert "empty" in repr(out)
    with pytest.raises(EmptyResultError, match="no scene in collection"):
        rasteret.get_xarray({"a": FIELD_A}, ["B04"], date_range=("2024-02-01", "2024-02-28"))


def test_the_cloud_filter_is_named_when_it_removes_everything(rasteret):
    with pytest.warns(EmptyResultWarning, match="cloud filter removed every scene: 2 scene.*< 1%"):
        out = rasteret.get_xarray({"a": FIELD_A}, ["B04"], cloud_cover_lt=1, date_range=("2024-01-15", "2024-01-15"),
                                  per_geometry=True)
    assert out.diagnosis.empty_step == "cloud_cover" and out.diagnosis.scenes_per_date == {"2024-01-15": 2}


def test_a_geometry_outside_every_scene_is_named_as_no_overlap(rasteret):
    far = shapely.box(10.0, 45.0, 10.01, 45.01)
    with pytest.warns(EmptyResultWarning, match="no scene overlaps the geometries: 6 scene"):
        out = rasteret.get_xarray({"alps": far}, ["B04"], per_geometry=True)
    assert out.diagnosis.empty_step == "overlap" and out.diagnosis.hint is None


def test_swapped_lat_lon_is_pointed_out(rasteret):
    with pytest.warns(EmptyResultWarning, match=r"x and y swapped they would overlap.*\(longitude, latitude\)"):
        rasteret.get_xarray({"a": swap_axes(FIELD_A)}, ["B04"], per_geometry=True)


def test_projected_coordinates_without_crs_are_refused_naming_crs(rasteret):
    utm = shapely.box(771003, 1436011, 772507, 1437493)
    with pytest.raises(GeometryError, match=r"outside the longitude/latitude range.*crs="):
        rasteret.get_xarray({"a": utm}, ["B04"], per_geometry=True)
    ds = rasteret.get_xarray({"a": utm}, ["B04"], per_geometry=True, crs="EPSG:32643")
    assert ds["a"].sizes["time"] == 3


def test_a_string_of_bands_is_one_band(rasteret):
    one = rasteret.get_xarray({"a": FIELD_A}, "B04", per_geometry=True)["a"]
    assert list(one.data_vars) == ["B04"]
    with pytest.raises(ValueError, match="no bands"):
        rasteret.get_xarray({"a": FIELD_A}, [], per_geometry=True)


def test_some_failed_reads_warn_with_the_cause_and_return_the_rest(tmp_path, items_file):  # noqa: F811
    scenes = tmp_path / "scenes"
    shutil.copytree(items_file.parent / "scenes", scenes)
    items = [json.loads(json.dumps(i).replace(str(items_file.parent / "scenes"), str(scenes)))
             for i in json.loads(items_file.read_text())["features"]]
    r = built(tmp_path, items)
    victim = sorted(scenes.iterdir())[0]
    (victim / "B04.tif").write_bytes((victim / "B04.tif").read_bytes()[:20000])  # truncated after the build
    with pytest.warns(PartialReadWarning, match=r"1 of 6 read\(s\) failed, first causes: .*e\.g\. " + victim.name):
        out = r.get_xarray({"a": FIELD_A, "b": FIELD_B}, ["B04"], per_geometry=True)
    assert set(out) == {"a", "b"} and len(r.last_read.failures) == 1


def test_a_band_no_scene_stores_is_warned_about(tmp_path, items_file):  # noqa: F811
    items = json.loads(items_file.read_text())["features"]
    for item in items:
        item["assets"]["nir"]["href"] = str(tmp_path / "missing" / "B08.tif")
    r = built(tmp_path, items, "nonir", local_roots=[str(items_file.parent)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = r.get_xarray({"a": FIELD_A}, ["B04", "B08"], per_geometry=True)
    assert list(out["a"].data_vars) == ["B04"]
    messages = [str(w.message) for w in caught if issubclass(w.category, MissingBandWarning)]
    assert messages and "band 'B08' is stored for none of the 3 scene(s)" in messages[0]
    assert not [w for w in caught if issubclass(w.category, PartialReadWarning)]


def test_get_gdf_with_nothing_to_read_is_an_empty_frame_with_its_columns(rasteret):
    with pytest.warns(EmptyResultWarning):
        gdf = rasteret.get_gdf({"a": FIELD_A}, ["B04"], date_range=("2023-01-01", "2023-01-02"))
    assert len(gdf) == 0 and "geometry_id" in gdf.columns and gdf.crs.to_epsg() == 4326


def test_one_geometry_id_rule_for_every_input_form():
    a, b = FIELD_A, FIELD_B
    assert list(named_geometries([a, b])) == ["1", "2"]
    assert list(named_geometries({"farm a": a})) == ["farm a"]  # spaces are fine in ids
    frame = gpd.GeoDataFrame({"name": ["north", "south"], "id": [7, 8]}, geometry=[a, b], crs=4326, index=[10, 11])
    assert list(named_geometries(frame)) == ["north", "south"]
    assert list(named_geometries(frame.drop(columns="name"))) == ["7", "8"]
    assert list(named_geometries(frame.drop(columns=["name", "id"]))) == ["10", "11"]
    features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"}, "geometry": a.__geo_interface__},
        {"type": "Feature", "id": "y", "properties": {}, "geometry": b.__geo_interface__},
    ]}
    assert list(named_geometries(features)) == ["x", "y"]
    with pytest.raises(GeometryError, match="'north' appears twice"):
        named_geometries(gpd.GeoDataFrame({"name": ["north", "north"]}, geometry=[a, b], crs=4326))


def test_reprs_say_what_they_hold(rasteret):
    assert repr(rasteret).startswith("Rasteret('testaoi_202401-01_s2local', source='s2-local'") and "built=True" in repr(rasteret)
    out = rasteret.get_xarray({"a": FIELD_A}, ["B04"], per_geometry=True)
    assert repr(out).startswith("GeometryDatasets({'a': {'time': 3")
    assert "rasters=3" in repr(rasteret.last_read) and "failures=0" in repr(rasteret.last_read)


def test_the_stacked_form_keeps_the_dtype_and_far_apart_geometries_can_be_stacked_on_request(rasteret):
    ds = rasteret.get_xarray({"a": FIELD_A, "b": FIELD_B}, ["B04"])
    assert ds.B04.dtype == "uint16"  # filled with nodata in its own dtype, not float64
    far = {"a": utm_box_lonlat(770100, 1439800, 770200, 1439900), "b": utm_box_lonlat(785000, 1435000, 785100, 1435100)}
    with pytest.raises(Exception, match="allow_sparse=True"):
        rasteret.get_xarray(far, ["B04"])
    stacked = rasteret.get_xarray(far, ["B04"], allow_sparse=True)
    assert list(stacked.geometry.values) == ["a", "b"] and stacked.B04.dtype == "uint16"
