"""The team instance for real: ``deploy/dagster.team.yaml``'s Postgres storage (runs, event log,
schedules) on a PostgreSQL server started by the session, ``dagster-daemon`` and
``dagster-webserver`` as separate processes, each run in its own process (the default run
launcher stands in for Kubernetes), driven over GraphQL as the UI drives it."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rasteret_core.products.timeseries import read_stats
from rasteret_core.testing.synthetic import s2_like_item, TileGrid, write_scene
from rasteret_pipelines.defs.partitions import partition_key
from rasteret_pipelines.local_deploy import LocalDeployment
from rasteret_pipelines.settings import aoi_file

from .conftest import BUCKET, PREFIX, write_items

PROJECT = Path(__file__).resolve().parents[2]
QUICK_DAEMON = [sys.executable, "-m", "tests.helpers.quick_daemon"]  # the real daemon, a 3 s backfill loop
FIRST = ["bangalore_aoi1", "hesaraghatta_farm"]   # the AOI source when the deployment starts
ADDED = "bangalore_aoi2"


def write_aois(path: Path, names: list[str]) -> None:
    data = json.loads(Path(aoi_file()).read_text())
    data["features"] = [f for f in data["features"] if f["properties"]["name"] in names]
    path.write_text(json.dumps(data))


def team_instance_yaml(home: Path) -> None:
    """The team file as shipped, with the default run launcher instead of Kubernetes (which,
    unlike Kubernetes jobs, cannot resume a run whose worker died)."""
    config = yaml.safe_load((PROJECT / "deploy" / "dagster.team.yaml").read_text())
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    del config["run_launcher"]
    config["run_monitoring"]["max_resume_run_attempts"] = 0
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


pytestmark = pytest.mark.timeout(1200)  # real processes on a shared machine; the daemon's pace


@pytest.fixture(scope="module")
def team(tmp_path_factory, team_postgres, demo_scenes, scene_server):
    root = tmp_path_factory.mktemp("team")
    home = root / "dagster_home"
    home.mkdir()
    team_instance_yaml(home)
    # a scene for yesterday, so the automation (which follows the latest date) has work
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    when = dt.datetime.combine(yesterday, dt.time(5, 12), tzinfo=dt.timezone.utc)
    scene_id = f"S2A_43PGQ_{when:%Y%m%d}_0_L2A"
    grid = TileGrid(size=1024)
    write_scene(demo_scenes.folder / PREFIX / scene_id, grid, when, 9.0, seed=5)
    items = [*demo_scenes.items, s2_like_item(scene_id, when, grid, 9.0, href_base=f"s3://{BUCKET}/{PREFIX}")]
    aois = root / "aois.geojson"
    write_aois(aois, FIRST)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_"))},
        **team_postgres,
        "RASTERET_STAC_SOURCE": str(write_items(root / "items.json", items)),
        "RASTERET_STORAGE": str(root / "storage"),
        "RASTERET_S3_ENDPOINT": scene_server.endpoint_url,
        "RASTERET_AOIS": str(aois),
        "RASTERET_START_DATE": "2024-01-01",
        "RASTERET_SENSOR_INTERVAL": "5",
    }
    with pytest.MonkeyPatch.context() as env_patch:
        for name, value in team_postgres.items():  # this process reads the same instance
            env_patch.setenv(name, value)
        with LocalDeployment(home, env, daemon=QUICK_DAEMON) as deployment, dg.DagsterInstance.from_config(str(home)) as instance:
            deployment.aois, deployment.storage, deployment.instance = aois, root / "storage", instance
            deployment.yesterday = yesterday.isoformat()
            # the aoi_source sensor turns the AOI file into partitions on its first ticks
            deployment.wait_until(lambda: sorted(instance.get_dynamic_partitions("aois")) == FIRST, 120,
                                  what="AOI partitions from the AOI source")
            yield deployment


def automation_runs(instance):
    return [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.SUCCESS and (
        r.tags.get("dagster/sensor_name") == "rasteret_automation" or "dagster/from_automation_condition" in r.tags)]


def materialized_in(instance, run_id, asset="ndvi"):
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return {r.event_log_entry.asset_materialization.partition for r in records
            if r.event_log_entry.asset_materialization.asset_key == dg.AssetKey(asset)}


def runs_of(instance, backfill_id):
    return instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))


def test_backfills_run_on_postgres_in_few_runs_and_concurrent_ones_lose_nothing(team):
    instance = team.instance
    assert "Postgres" in type(instance.run_storage).__name__ and "Postgres" in type(instance.event_log_storage).__name__
    assert "Postgres" in type(instance.schedule_storage).__name__
    first = team.launch_backfill({
        "scene_collection": ("2024-01-01", "2024-01-16"),
        "ndvi": (partition_key("2024-01-01", FIRST[0]), partition_key("2024-01-16", FIRST[-1])),
        "ndvi_stats": (partition_key("2024-01-01", FIRST[0]), partition_key("2024-01-16", FIRST[-1])),
    }, title="January")
    second = team.launch_backfill({  # overlapping dates, launched while the first runs
        "scene_collection": ("2024-01-10", "2024-01-15"),
        "ndvi": (partition_key("2024-01-10", FIRST[0]), partition_key("2024-01-15", FIRST[-1])),
        "ndvi_stats": (partition_key("2024-01-10", FIRST[0]), partition_key("2024-01-15", FIRST[-1])),
    })
    for backfill in (first, second):
        status = team.wait_for_backfill(backfill, timeout=900)
        assert status["status"] == "COMPLETED_SUCCESS", (status, team.log_tail("daemon"))
        runs = runs_of(instance, backfill)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # the collection's dates in one run; NDVI and statistics together, one run per AOI (each
        # over all dates: Dagster splits a date x AOI rectangle along its shorter side)
        assert len(runs) == 1 + len(FIRST), [(r.run_id, r.tags) for r in runs]

    days = [(dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(16)]
    assert set(days) <= instance.get_materialized_partitions(dg.AssetKey("scene_collection"))
    keys = {partition_key(d, a) for d in days for a in FIRST}
    for asset in ("ndvi", "ndvi_stats"):
        assert keys <= instance.get_materialized_partitions(dg.AssetKey(asset)), asset
    table = read_stats(str(team.storage / "ndvi_stats"))
    assert not table.duplicated(["date", "aoi"]).any()  # one row per date x AOI: nothing written twice
    with_scenes = table[table.scene_ids.map(lambda ids: ids is not None and len(ids) > 0)]
    assert sorted(set(zip(with_scenes.date.dt.strftime("%Y-%m-%d"), with_scenes.aoi))) == sorted(
        (d, a) for d in ("2024-01-05", "2024-01-10", "2024-01-15") for a in FIRST)
    for d in ("2024-01-05", "2024-01-10", "2024-01-15"):
        for a in FIRST:
            assert list((team.storage / "ndvi" / a / d).glob("*.tif")), (a, d)
    event = instance.get_latest_materialization_event(dg.AssetKey("ndvi"))
    assert event is not None and event.asset_materialization.metadata["header_requests"].value == 0


def test_daemon_follows_collection_refresh_and_aoi_source(team):
    instance = team.instance
    day = team.yesterday
    # a collection refresh of the latest date (as the 06:00 cron would start it) ...
    refresh = team.launch_backfill({"scene_collection": (day, day)})
    assert team.wait_for_backfill(refresh)["status"] == "COMPLETED_SUCCESS"

    # ... is followed by NDVI for every AOI, launched by the automation sensor, in one run
    def ndvi_for(aois):
        done = instance.get_materialized_partitions(dg.AssetKey("ndvi_stats"))
        return all(partition_key(day, a) in done for a in aois)

    def automated_ndvi():  # a finished automation run that materialised yesterday's NDVI
        return [r for r in automation_runs(instance) if partition_key(day, FIRST[0]) in materialized_in(instance, r.run_id)]

    (run,) = team.wait_until(automated_ndvi, 300, what="NDVI after the collection refresh, by the automation")
    assert materialized_in(instance, run.run_id) == {partition_key(day, a) for a in FIRST}  # all AOIs, one run
    assert ndvi_for(FIRST)

    # an AOI added to the source becomes a partition and gets NDVI for the collection's dates
    write_aois(team.aois, [*FIRST, ADDED])
    team.wait_until(lambda: ADDED in instance.get_dynamic_partitions("aois"), 300, what="the added AOI's partition")
    team.wait_until(lambda: ndvi_for([ADDED]), 300, what="NDVI of the added AOI")
    assert list((team.storage / "ndvi" / ADDED / day).glob("*.tif"))

    # a removed AOI stops being a partition, so the next refresh's NDVI leaves it out
    write_aois(team.aois, [FIRST[0], ADDED])
    team.wait_until(lambda: FIRST[1] not in instance.get_dynamic_partitions("aois"), 300, what="the AOI's removal")
    before = {r.run_id for r in instance.get_runs()}
    refresh = team.launch_backfill({"scene_collection": (day, day)})
    assert team.wait_for_backfill(refresh)["status"] == "COMPLETED_SUCCESS"

    def next_ndvi_run():  # the run following the refresh (an earlier one may still be finishing ADDED)
        runs = [r for r in automation_runs(instance)
                if r.run_id not in before and partition_key(day, FIRST[0]) in materialized_in(instance, r.run_id)]
        return runs[0] if runs else None

    run = team.wait_until(next_ndvi_run, 300, what="NDVI after the second refresh")
    assert materialized_in(instance, run.run_id) == {partition_key(day, FIRST[0]), partition_key(day, ADDED)}
