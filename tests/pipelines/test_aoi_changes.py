"""The AOI sensor compares geometries, not only names: a moved polygon gets its partitions
requested again (the run says why) and the statistics follow the new shape; the sensor
registers new AOIs itself, tolerating another process registering the same ones."""

from __future__ import annotations

import json

import dagster as dg
import shapely
from shapely.affinity import translate
from shapely.geometry import mapping, shape

from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.defs.partitions import add_aois, AOIS
from rasteret_pipelines.defs.resources import Aois

from .test_assets import COLLECTION, FARM, NDVI, materialize, ndvi_key
from .test_batched_runs import _aoi_file, _tick

DAY = "2024-01-05"


def test_a_moved_polygon_is_requested_again_with_its_reason_and_the_statistics_follow_it(pipeline, tmp_path):
    with dg.instance_for_test() as instance:
        source = _aoi_file(tmp_path / "aois.geojson", [FARM])
        resources = {**pipeline, "aois": Aois(path=str(source))}
        materialize(COLLECTION, DAY, resources, instance)
        first = _tick(instance, source)
        assert instance.get_dynamic_partitions(AOIS.name) == [FARM]  # registered by the tick itself
        assert materialize(NDVI, ndvi_key(DAY), resources, instance).success
        data = json.loads(source.read_text())
        moved = translate(shape(data["features"][0]["geometry"]), xoff=0.045)  # ~5 km east
        data["features"][0]["geometry"] = mapping(moved)
        source.write_text(json.dumps(data))

        result = _tick(instance, source, first.cursor)

        (run,) = result.run_requests
        assert run.tags["rasteret/aoi_changed"] == FARM
        assert FARM in run.tags["rasteret/reason"] and "polygon" in run.tags["rasteret/reason"]
        assert run.tags["dagster/asset_partition_range_start"] == str(ndvi_key(DAY))
        assert run.tags["dagster/asset_partition_range_end"] == str(ndvi_key(DAY))
        assert not result.dynamic_partitions_requests  # same name: nothing to add or remove
        materialize(NDVI, ndvi_key(DAY), resources, instance)  # what the requested run does
        (row,) = read_stats(pipeline["storage"].stats_root).itertuples()
        assert shapely.equals_exact(row.geometry, moved, tolerance=1e-9)  # no longer the old polygon
        assert isinstance(_tick(instance, source, result.cursor), dg.SkipReason)


def test_the_sensor_and_another_process_registering_the_same_aois_both_succeed(tmp_path):
    with dg.instance_for_test() as instance:
        source = _aoi_file(tmp_path / "aois.geojson", [FARM, "bangalore_aoi1"])
        assert add_aois(instance, [FARM]) == [FARM]  # a run or script got there first
        result = _tick(instance, source)
        (add,) = result.dynamic_partitions_requests  # the tick still shows what it added
        assert list(add.partition_keys) == ["bangalore_aoi1"]
        assert sorted(instance.get_dynamic_partitions(AOIS.name)) == sorted([FARM, "bangalore_aoi1"])
        # the daemon applying the request afterwards finds every key present: nothing to race on
        assert add_aois(instance, add.partition_keys) == []
