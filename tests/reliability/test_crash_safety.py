"""Crash safety: a run killed with SIGKILL while it replaces an output leaves the previous
version whole and readable, shows no partial file, and a rerun publishes the new version.

For each output (a collection partition, an NDVI GeoTIFF, the statistics table) version 1 is
materialized, the input is changed so the output would differ, and a child process
materializes the same partition into the same storage root and Dagster instance. The child
(``_children/materialize.py``) pauses inside ``atomic_write`` for that file at a kill point,
says READY, and is SIGKILLed there:

- ``before_write``: the new version is built in memory, nothing of it is on disk yet;
- ``partial_temp``: half of the new bytes are in the hidden temporary file;
- ``temp_written``: the whole new version is in the temporary file, fsynced, not renamed.

A SIGKILLed run also leaves state in the Dagster instance: the run stays STARTED and keeps the
``s3_reads`` pool slot its step claimed. With the project's ``dagster.yaml`` (pool limit 2, no
``run_monitoring.free_slots_after_run_end_seconds``) nothing ever frees it, so after two such
crashes every later ``scene_collection``/``ndvi`` step waits for a slot forever. The tests
check that the slot is held and then clean up as an operator (or Dagster's run monitoring)
would: mark the run failed and free its slots, before the rerun.
"""

from __future__ import annotations

import copy
import signal
from pathlib import Path
from types import SimpleNamespace

import dagster as dg

from rasteret_pipelines.defs.partitions import sync_aois

from rasteret_pipelines.settings import aoi_file, aoi_names
import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely.affinity

from rasteret_core.products.aois import load_aois
from rasteret_core.collection import Collection
from rasteret_core.products.outputs import write_cog
from rasteret_core.storage import list_files
from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.resources import Aois
from rasteret_pipelines.settings import aoi_file
from tests.pipelines.conftest import write_items
from tests.pipelines.test_assets import expected_ndvi

from ._children.harness import child_env, children, dagster_home

KILL_POINTS = ("before_write", "partial_temp", "temp_written")
DAY, FARM = "2024-01-05", "hesaraghatta_farm"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture
def crash(tmp_path, pipeline):
    """One DAGSTER_HOME (the project's dagster.yaml, SQLite) shared by this process and its children."""
    home = dagster_home(tmp_path / "dagster_home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor's job in a deployment
        yield SimpleNamespace(instance=instance, env=child_env(home, tmp_path / "child_tmp"), logs=tmp_path / "logs",
                              leaked_slots=0)


def materialize(names, key, resources, instance):
    result = dg.materialize([defs.get_assets_def(n) for n in names], partition_key=key, resources=resources,
                            instance=instance, run_config=QUIET)
    assert result.success
    return result


def child_params(pipeline, names, partition) -> dict:
    return {
        "assets": names, "partition": partition, "items": pipeline["stac"].source,
        "endpoint": pipeline["reader"].endpoint_url, "storage": pipeline["storage"].root, "aois": pipeline["aois"].path,
    }


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def temporaries(target: Path) -> set[Path]:
    return set(target.parent.glob(f".{target.name}.*.tmp"))


def clean_up_killed_run(instance: dg.DagsterInstance, run_id: str, names: list[str]) -> int:
    """The killed run is left STARTED holding a pool slot per pooled step: mark it failed and
    free its slots, as run monitoring would. Returns the number of slots it held."""
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.STARTED  # nothing noticed the death
    pooled = {n: defs.get_assets_def(n).op.pool for n in names if defs.get_assets_def(n).op.pool}

    def held():
        return sorted(c.step_key for pool in set(pooled.values())
                      for c in instance.event_log_storage.get_concurrency_info(pool).claimed_slots if c.run_id == run_id)

    slots = held()
    assert slots == sorted(pooled), "a killed run keeps the pool slot of its step"
    instance.report_run_failed(run)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    assert held() == []
    return len(slots)


def kill_while_writing(target: Path, params: dict, crash, previous_version_is_readable, is_new_version) -> int:
    """SIGKILL a child at each kill point while it replaces ``target``; check what is left.

    The children load in parallel (the slow part) but run one at a time: each is released
    only after the previous one was killed and checked (also because on SQLite two runs
    claiming a pool slot at the same instant can be handed the same slot)."""
    old = target.read_bytes()
    files = visible(target.parent)
    pauses = [{**params, "start_gate": True, "pause": {"target": str(target), "at": point}} for point in KILL_POINTS]
    with children(*pauses, env=crash.env, logs=crash.logs) as kids:
        for point, child in zip(KILL_POINTS, kids):
            child.wait_line("LOADED")
            temps_before = temporaries(target)
            child.release()
            ready = child.wait_line("READY")
            assert ready["at"] == point
            assert child.sigkill() == -signal.SIGKILL
            crash.leaked_slots += clean_up_killed_run(crash.instance, ready["run_id"], params["assets"])
            assert target.read_bytes() == old, f"killed at {point}: the previous version changed"
            assert visible(target.parent) == files, f"killed at {point}: a partial file is visible"
            left = temporaries(target) - temps_before
            if point == "before_write":
                assert not left, f"killed before writing, yet {left} exists"
            else:  # the kill landed mid-write: the new bytes sit in a hidden temporary file only
                assert left == {Path(ready["tmp"])}
                assert Path(ready["tmp"]).stat().st_size == ready["written"]
                assert Path(ready["tmp"]).read_bytes() != old
                if point == "partial_temp":
                    assert ready["written"] < ready["bytes"]
                else:  # the complete new version was on disk, just not published
                    assert ready["written"] == ready["bytes"]
                    is_new_version(Path(ready["tmp"]))
            previous_version_is_readable()
    return len(KILL_POINTS)


def test_killed_collection_partition_write_keeps_the_previous_partition(pipeline, crash, demo_scenes, record_property):
    materialize(["scene_collection"], DAY, pipeline, crash.instance)
    root = pipeline["storage"].collection_root
    target = Path(root) / f"date={DAY}" / "part.parquet"
    table = pq.read_table(target)

    def scenes():
        return [(s.id, s.cloud_cover) for s in Collection.open(root).scenes(date_range=(DAY, DAY))]

    old_scenes = scenes()
    items = copy.deepcopy(demo_scenes.items)
    (changed,) = [i for i in items if i["properties"]["datetime"].startswith(DAY)]
    assert [changed["id"]] == [s for s, _ in old_scenes]
    changed["properties"]["eo:cloud_cover"] = 55.5
    write_items(Path(pipeline["stac"].source), items)

    def previous_version_is_readable():
        assert pq.read_table(target).equals(table)
        assert scenes() == old_scenes
        frame = gpd.read_parquet(root)  # the whole collection, as any GeoParquet reader sees it
        assert frame.crs.to_epsg() == 4326
        assert sorted(zip(frame.id, frame["eo:cloud_cover"])) == sorted(old_scenes)

    def is_new_version(path):
        assert pq.read_table(path).column("eo:cloud_cover").to_pylist() == [55.5]

    kills = kill_while_writing(target, child_params(pipeline, ["scene_collection"], DAY), crash,
                               previous_version_is_readable, is_new_version)
    record_property("reliability.crash_kills", kills)
    record_property("reliability.crash_pool_slots_freed", crash.leaked_slots)

    result = materialize(["scene_collection"], DAY, pipeline, crash.instance)
    assert result.get_asset_check_evaluations()[0].passed
    assert scenes() == [(changed["id"], 55.5)]
    assert sorted(gpd.read_parquet(root).id) == [changed["id"]]
    assert visible(target.parent) == ["part.parquet"]


def test_killed_ndvi_write_keeps_the_previous_geotiff(pipeline, crash, demo_scenes, tmp_path, record_property):
    key = dg.MultiPartitionKey({"date": DAY, "aoi": FARM})
    materialize(["scene_collection"], DAY, pipeline, crash.instance)
    (path,) = materialize(["ndvi"], key, pipeline, crash.instance).asset_materializations_for_node("ndvi")[0] \
        .metadata["outputs"].value
    target = Path(path)
    with rasterio.open(target) as src:
        old_values, old_transform, old_crs = src.read(1), src.transform, src.crs

    # a smaller farm: the same scene gives a different NDVI raster under the same name
    aois = load_aois(aoi_file())
    aois[FARM] = shapely.affinity.scale(aois[FARM], 0.6, 0.6)
    aoi_path = tmp_path / "aois_smaller_farm.geojson"
    gpd.GeoDataFrame({"name": list(aois)}, geometry=list(aois.values()), crs=4326).to_file(aoi_path, driver="GeoJSON")
    pipeline["aois"] = Aois(path=str(aoi_path))

    def previous_version_is_readable():
        with rasterio.open(target) as src:
            assert src.crs == old_crs and src.transform == old_transform
            np.testing.assert_array_equal(src.read(1), old_values)

    (scene_id,) = [i["id"] for i in demo_scenes.items if i["properties"]["datetime"].startswith(DAY)]
    want, transform = expected_ndvi(demo_scenes, scene_id, aois[FARM])

    def is_new_version(path):
        with rasterio.open(path) as src:
            np.testing.assert_allclose(src.read(1), want, rtol=1e-6, equal_nan=True)

    kills = kill_while_writing(target, child_params(pipeline, ["ndvi"], {"date": DAY, "aoi": FARM}), crash,
                               previous_version_is_readable, is_new_version)
    record_property("reliability.crash_kills", kills)
    record_property("reliability.crash_pool_slots_freed", crash.leaked_slots)

    result = materialize(["ndvi"], key, pipeline, crash.instance)
    assert result.asset_materializations_for_node("ndvi")[0].metadata["outputs"].value == [path]
    with rasterio.open(target) as src:
        assert src.read(1).shape == want.shape != old_values.shape
        assert tuple(src.transform)[:6] == pytest.approx(tuple(transform)[:6])
        np.testing.assert_allclose(src.read(1), want, rtol=1e-6, equal_nan=True)
    assert list_files(str(target.parent)) == [path[: -len(".tif")] + ".json", path]  # the COG and its sidecar


def test_killed_stats_write_keeps_the_previous_table(pipeline, crash, record_property):
    key = dg.MultiPartitionKey({"date": DAY, "aoi": FARM})
    materialize(["scene_collection"], DAY, pipeline, crash.instance)
    (path,) = materialize(["ndvi", "ndvi_stats"], key, pipeline, crash.instance) \
        .asset_materializations_for_node("ndvi")[0].metadata["outputs"].value
    stats_root = pipeline["storage"].stats_root
    target = Path(stats_root) / f"date={DAY}" / f"aoi={FARM}.parquet"
    table = pq.read_table(target)
    old = read_stats(stats_root)
    assert len(old) == 1 and old.iloc[0]["valid_pixels"] > 0

    # a different NDVI raster for the same scene: half the values
    with rasterio.open(path) as src:
        values, transform, epsg = src.read(1), src.transform, src.crs.to_epsg()
    write_cog(values * np.float32(0.5), path, transform=transform, crs_epsg=epsg, nodata=float("nan"))

    def previous_version_is_readable():
        assert pq.read_table(target).equals(table)
        now = read_stats(stats_root)
        assert now.drop(columns="geometry").equals(old.drop(columns="geometry"))
        assert now.geometry.equals(old.geometry)

    def is_new_version(path):
        (mean,) = pq.read_table(path).column("mean").to_pylist()
        assert mean == pytest.approx(old.iloc[0]["mean"] * 0.5, rel=1e-6)

    kills = kill_while_writing(target, child_params(pipeline, ["ndvi_stats"], {"date": DAY, "aoi": FARM}), crash,
                               previous_version_is_readable, is_new_version)
    record_property("reliability.crash_kills", kills)
    record_property("reliability.crash_pool_slots_freed", crash.leaked_slots)

    materialize(["ndvi_stats"], key, pipeline, crash.instance)
    (row,) = read_stats(stats_root).itertuples()
    before = old.iloc[0]
    assert row.valid_pixels == before["valid_pixels"] and list(row.scene_ids) == list(before["scene_ids"])
    assert row.mean == pytest.approx(before["mean"] * 0.5, rel=1e-6)
    assert row.median == pytest.approx(before["median"] * 0.5, rel=1e-6)
    assert visible(target.parent) == [target.name]
