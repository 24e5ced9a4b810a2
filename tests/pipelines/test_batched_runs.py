"""Runs that do a lot each: a date x AOI range is one run reading each tile once for all its
AOIs, with per-partition metadata; refreshes of unchanged dates read no header; the AOI
sensor and the freshness checks, evaluated against a real (temporary) instance."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from rasteret_core.errors import RasteretWarning, UnsafePathError
from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.automation import freshness_day, missing_partitions
from rasteret_pipelines.defs.partitions import AOIS, partition_key
from rasteret_pipelines.defs.resources import Aois, CogReader, StacSource
from rasteret_pipelines.defs.sensors import aoi_source
from rasteret_pipelines.settings import aoi_file

from .conftest import write_items

COLLECTION = [defs.get_assets_def("scene_collection")]
NDVI = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
DAY = "2024-01-05"
PAIR = ("bangalore_aoi1", "bangalore_aoi2")  # overlapping fields: they share tiles


def range_tags(day_first, aoi_first, day_last, aoi_last):
    return {"dagster/asset_partition_range_start": partition_key(day_first, aoi_first),
            "dagster/asset_partition_range_end": partition_key(day_last, aoi_last)}


def tile_requests(server):
    return [(r.path, r.range) for r in server.requests_for() if r.range]


def test_one_run_reads_shared_tiles_once_and_reports_each_partition(pipeline, instance, scene_server):
    dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
    separate = 0
    for aoi in PAIR:
        scene_server.reset_stats()
        dg.materialize(NDVI, partition_key=partition_key(DAY, aoi), resources=pipeline, instance=instance)
        separate += len(tile_requests(scene_server))

    scene_server.reset_stats()
    result = dg.materialize(NDVI, resources=pipeline, instance=instance, tags=range_tags(DAY, PAIR[0], DAY, PAIR[1]))
    batched = tile_requests(scene_server)
    assert not [k for k, n in Counter(batched).items() if n > 1], "a tile range was fetched twice in one run"
    assert len(batched) < separate  # the shared tiles were read once, not once per AOI

    events = {e.partition: e.metadata for e in result.asset_materializations_for_node("ndvi")}
    assert set(events) == {partition_key(DAY, a) for a in PAIR}
    for aoi in PAIR:
        meta = events[partition_key(DAY, aoi)]
        assert meta["rasters"].value == 1 and meta["header_requests"].value == 0
        assert all(f"/ndvi/{aoi}/{DAY}/" in p for p in meta["outputs"].value)  # its own outputs only
        assert meta["aois_sharing_reads"].value == 2
    stats = {e.partition: e.metadata for e in result.asset_materializations_for_node("ndvi_stats")}
    assert set(stats) == set(events) and all(m["scenes"].value == 1 for m in stats.values())
    table = read_stats(pipeline["storage"].stats_root)
    assert sorted(table.aoi) == sorted(PAIR)


def test_refresh_of_an_unchanged_date_reads_no_header(pipeline, instance, demo_scenes, scene_server, tmp_path):
    items = copy.deepcopy(demo_scenes.items)
    for item in items:
        item["properties"]["updated"] = "2024-01-06T02:00:00Z"
    write_items(tmp_path / "items.json", items)
    dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)

    scene_server.reset_stats()
    result = dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
    meta = result.asset_materializations_for_node("scene_collection")[0].metadata
    # no header read: one 1-byte version check per stored file (a file replaced under its href is re-read)
    assert [r.range for r in scene_server.requests_for()] == ["bytes=0-0"] * 3 and meta["requests"].value == 3
    assert meta["scenes"].value == 1 and meta["scenes_reused"].value == 1

    items[0]["properties"]["updated"] = "2024-02-01T00:00:00Z"  # reprocessed: read again
    write_items(tmp_path / "items.json", items)
    scene_server.reset_stats()
    result = dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
    meta = result.asset_materializations_for_node("scene_collection")[0].metadata
    assert meta["scenes_reused"].value == 0 and meta["requests"].value == 3 == len(scene_server.requests_for())


def _aoi_file(path, names, source=aoi_file()):
    data = json.loads(open(source).read())
    data["features"] = [f for f in data["features"] if f["properties"]["name"] in names]
    path.write_text(json.dumps(data))
    return path


def _tick(instance, source, cursor=None):
    """One evaluation of the sensor, as the daemon runs it (the previous tick's cursor given)."""
    return aoi_source(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"aois": Aois(path=str(source))}))


def test_aoi_sensor_adds_backfills_and_removes(pipeline, tmp_path):
    with dg.instance_for_test() as instance:
        dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
        source = _aoi_file(tmp_path / "aois.geojson", PAIR)
        result = _tick(instance, source)
        (add,) = result.dynamic_partitions_requests
        assert add.partitions_def_name == "aois" and list(add.partition_keys) == list(PAIR)
        (run,) = result.run_requests
        assert run.tags["dagster/asset_partition_range_start"] == partition_key(DAY, PAIR[0])
        assert run.tags["dagster/asset_partition_range_end"] == partition_key(DAY, PAIR[1])
        instance.add_dynamic_partitions("aois", list(PAIR))  # what the daemon does with the request

        unchanged = _tick(instance, source, result.cursor)
        assert isinstance(unchanged, dg.SkipReason)
        _aoi_file(source, PAIR[:1])
        result = _tick(instance, source, result.cursor)
        (delete,) = result.dynamic_partitions_requests
        assert list(delete.partition_keys) == [PAIR[1]] and not result.run_requests


def test_aoi_sensor_requests_an_aoi_again_when_its_polygon_moves(pipeline, tmp_path):
    from shapely.affinity import translate
    from shapely.geometry import mapping, shape

    with dg.instance_for_test() as instance:
        dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
        source = _aoi_file(tmp_path / "aois.geojson", PAIR)
        first = _tick(instance, source)
        instance.add_dynamic_partitions("aois", list(PAIR))
        # the same polygons written differently (another ring start) are not a change
        data = json.loads(source.read_text())
        ring = data["features"][0]["geometry"]["coordinates"][0]
        data["features"][0]["geometry"]["coordinates"][0] = ring[1:] + [ring[1]]
        source.write_text(json.dumps(data))
        assert isinstance(_tick(instance, source, first.cursor), dg.SkipReason)
        # the second field's polygon moves ~5 km east
        moved = translate(shape(data["features"][1]["geometry"]), xoff=0.05)
        data["features"][1]["geometry"] = mapping(moved)
        source.write_text(json.dumps(data))
        result = _tick(instance, source, first.cursor)
        (run,) = result.run_requests
        assert run.tags["rasteret/aoi_changed"] == PAIR[1] and "changed" in run.tags["rasteret/reason"]
        assert run.tags["dagster/asset_partition_range_start"] == partition_key(DAY, PAIR[1])
        assert run.tags["dagster/asset_partition_range_end"] == partition_key(DAY, PAIR[1])
        assert not result.dynamic_partitions_requests
        assert isinstance(_tick(instance, source, result.cursor), dg.SkipReason)  # asked once


def test_freshness_names_what_is_missing_after_the_deadline(pipeline, instance):
    assert freshness_day(dt.datetime(2024, 1, 6, 9, 30, tzinfo=dt.timezone.utc)) == DAY
    assert freshness_day(dt.datetime(2024, 1, 6, 8, 59, tzinfo=dt.timezone.utc)) == "2024-01-04"
    aois = instance.get_dynamic_partitions(AOIS.name)
    assert missing_partitions(instance, DAY) == {"scene_collection": [DAY], "ndvi": sorted(aois)}
    dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
    dg.materialize(NDVI, resources=pipeline, instance=instance, tags=range_tags(DAY, aois[0], DAY, aois[-2]))
    assert missing_partitions(instance, DAY) == {"ndvi": [aois[-1]]}


def test_freshness_job_runs_unpartitioned_and_fails_when_yesterday_is_missing(instance):
    run = defs.resolve_job_def("freshness_checks").execute_in_process(instance=instance, raise_on_error=False)
    evaluations = {e.asset_key.to_user_string(): e for e in run.get_asset_check_evaluations()}
    assert set(evaluations) == {"scene_collection", "ndvi"}
    for evaluation in evaluations.values():  # nothing was materialised for yesterday here
        assert not evaluation.passed and evaluation.metadata["missing"].value


def test_new_aois_are_backfilled_per_stretch_of_consecutive_collection_dates():
    from rasteret_pipelines.defs.sensors import consecutive

    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-03-01", "2024-12-31", "2025-01-01"]
    assert consecutive(days) == [("2024-01-01", "2024-01-03"), ("2024-03-01", "2024-03-01"), ("2024-12-31", "2025-01-01")]
    assert consecutive([]) == []


def test_runs_split_per_aoi_fetch_a_shared_tile_once_through_the_tile_cache(pipeline, instance, scene_server, tmp_path):
    """Dagster splits a rectangle with fewer AOIs than dates into one run per AOI; with the
    machine's tile cache the second AOI's run fetches none of the tiles the first one read,
    and writes the same NDVI as a run without the cache."""
    dg.materialize(COLLECTION, partition_key=DAY, resources=pipeline, instance=instance)
    cached = {**pipeline, "reader": CogReader(endpoint_url=scene_server.endpoint_url, retries=1,
                                              tile_cache=str(tmp_path / "tiles"))}
    fetched, metadata = [], []
    for aoi in PAIR:  # the two runs a per-AOI split launches, one after the other
        scene_server.reset_stats()
        result = dg.materialize(NDVI, resources=cached, instance=instance, tags=range_tags(DAY, aoi, DAY, aoi))
        fetched.append(set(tile_requests(scene_server)))
        metadata.append(result.asset_materializations_for_node("ndvi")[0].metadata)
    first, second = fetched
    assert first and metadata[0]["tiles_from_cache"].value == 0
    assert metadata[1]["tiles_from_cache"].value > 0  # the shared tiles came from the cache
    assert not first & second, "a tile the first run fetched was fetched again"

    written = {p: Path(p).read_bytes() for m in metadata for p in m["outputs"].value}
    for aoi in PAIR:  # the same runs without the cache rewrite the same files
        dg.materialize(NDVI, resources=pipeline, instance=instance, tags=range_tags(DAY, aoi, DAY, aoi))
    for path, data in written.items():
        assert Path(path).read_bytes() == data, f"{path} differs from the run without the cache"


def test_an_unsafe_default_tile_cache_is_skipped_with_a_warning_and_a_chosen_one_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o777)  # a shared, world-writable DAGSTER_HOME: its tile_cache could be swapped
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("RASTERET_TILE_CACHE", raising=False)
    with pytest.warns(RasteretWarning, match="reading without a tile cache"):
        assert CogReader().options().tile_cache is None
    chosen = CogReader(tile_cache=str(home / "mine"))
    with pytest.raises(UnsafePathError, match="writable by other users"):
        chosen.options()
