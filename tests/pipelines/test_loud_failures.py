"""A run that read nothing because reads failed ends failed and names the cause; a date
without scenes stays an explicit, passing empty result; multi-date runs say what each date held."""

from __future__ import annotations

import copy
import shutil
import socket

import dagster as dg

from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.resources import CogReader

from .conftest import BUCKET, PREFIX, write_items
from .test_assets import COLLECTION, NDVI, materialize, ndvi_key


def closed_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def step_failure(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run did not fail"
    return str(failures[0].event_specific_data.error)


def test_ndvi_against_an_unreachable_endpoint_fails_naming_the_cause(pipeline, instance):
    materialize(COLLECTION, "2024-01-05", pipeline, instance)
    endpoint = closed_endpoint()
    broken = {**pipeline, "reader": CogReader(endpoint_url=endpoint, retries=0)}
    result = materialize(NDVI, ndvi_key("2024-01-05"), broken, instance, raise_on_error=False)
    assert not result.success and not result.asset_materializations_for_node("ndvi")
    text = step_failure(result)
    assert "all 3 reads failed" in text and "connection failed" in text and f"read from {endpoint}" in text
    assert not instance.get_materialized_partitions(dg.AssetKey("ndvi"))  # nothing shows as materialized
    assert not instance.get_materialized_partitions(dg.AssetKey("ndvi_stats"))


def test_collection_against_an_unreachable_endpoint_fails_naming_the_cause(pipeline, instance):
    endpoint = closed_endpoint()
    broken = {**pipeline, "reader": CogReader(endpoint_url=endpoint, retries=0)}
    result = materialize(COLLECTION, "2024-01-05", broken, instance, raise_on_error=False)
    assert not result.success
    text = step_failure(result)
    assert "none of the 3 COG headers of 1 items could be read" in text and "connection failed" in text
    assert f"read from {endpoint}" in text
    assert not instance.get_materialized_partitions(dg.AssetKey("scene_collection"))


def test_tile_reads_failing_for_some_scenes_fail_the_blocking_check(pipeline, instance, demo_scenes, tmp_path):
    good = demo_scenes.items[0]
    late = copy.deepcopy(good)  # a second scene whose tiles disappear after the harvest
    late["id"] = "S2B_43PGQ_20240105_1_L2A"
    folder = demo_scenes.folder / PREFIX / "late"
    shutil.copytree(demo_scenes.folder / PREFIX / good["id"], folder, dirs_exist_ok=True)
    late["assets"]["nir"]["href"] = f"s3://{BUCKET}/{PREFIX}/late/B08.tif"
    write_items(tmp_path / "items.json", [good, late])
    materialize(COLLECTION, "2024-01-05", pipeline, instance)
    data = (folder / "B08.tif").read_bytes()
    (folder / "B08.tif").write_bytes(data[: 70 * 1024])  # the stored header stays right, the tiles are cut
    result = materialize(NDVI, ndvi_key("2024-01-05"), pipeline, instance, raise_on_error=False)
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "reads failed" in check.description
    assert "S2B_43PGQ_20240105_1_L2A" in check.metadata["failures"].value
    assert not result.asset_materializations_for_node("ndvi_stats")  # blocked downstream


def test_a_multi_date_run_says_what_each_date_held(pipeline, instance):
    job = defs.resolve_job_def("collection_job")
    run = job.execute_in_process(
        instance=instance, resources=pipeline,
        tags={"dagster/asset_partition_range_start": "2024-01-04", "dagster/asset_partition_range_end": "2024-01-06"},
    )
    meta = run.asset_materializations_for_node("scene_collection")[0].metadata
    assert meta["dates"].value == 3 and meta["scenes"].value == 1
    assert "| 2024-01-04 | 0 | - |" in meta["per_date"].value
    observed = {}
    for day in ("2024-01-04", "2024-01-05", "2024-01-06"):
        records = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("scene_collection"), asset_partitions=[day]), limit=1).records
        observed[day] = records[0].asset_observation.metadata
    assert observed["2024-01-04"]["scenes"].value == 0 and observed["2024-01-04"]["scene_ids"].value == []
    assert observed["2024-01-05"]["scene_ids"].value == ["S2A_43PGQ_20240105_0_L2A"]


def test_the_stats_folder_reads_as_one_table_with_geopandas(pipeline, instance):
    import geopandas as gpd

    for day in ("2024-01-05", "2024-01-10"):
        materialize(COLLECTION, day, pipeline, instance)
        materialize(NDVI, ndvi_key(day), pipeline, instance)
    table = gpd.read_parquet(pipeline["storage"].stats_root)  # what the docs promise
    assert sorted(table.date.astype(str)) == ["2024-01-05", "2024-01-10"] and table.crs.is_geographic
