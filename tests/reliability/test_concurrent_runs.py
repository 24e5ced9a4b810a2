"""Concurrent runs: two processes materializing at the same time into one storage root leave a
correct collection (and statistics table), and both runs succeed.

The two children (``_children/materialize.py``) are started together and share one storage
root and one Dagster instance: a ``DAGSTER_HOME`` holding the project's ``dagster.yaml``, so
both write to the same SQLite run, event-log and concurrency storage. That works for two runs
at once, with two caveats found here, both in Dagster's SQLite storage rather than in rasteret:

- two processes initialising a brand-new SQLite ``DAGSTER_HOME`` at the same moment can both
  stamp its schema version, after which opening it fails with "Version table 'alembic_version'
  has more than one head present"; so the instance is created before the runs start, as a
  deployment's ``dagster dev`` or daemon would;
- a pool slot is claimed by a SELECT then an UPDATE that SQLite does not lock, so two runs
  claiming at the same instant can be handed the same slot (the pool limit is then not
  enforced); harmless here, where two runs meet a limit of two.

To make the runs overlap where it matters instead of by luck, each child stops at its writes
(the collection's metadata file, then the date's partition, or the statistics file) until both
have reached the same point; the parent then releases both.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import geopandas as gpd
import pytest

from rasteret_core.collection import Collection
from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs
from tests.pipelines.conftest import write_items

from ._children.harness import child_env, children, dagster_home, wait_any

FIRST, SECOND = "2024-01-05", "2024-01-10"
AOI_PAIR = ("bangalore_aoi1", "hesaraghatta_farm")


@pytest.fixture
def shared(tmp_path, pipeline, demo_scenes):
    """Items with two scenes on FIRST (so a lost or doubled row shows), one DAGSTER_HOME."""
    items = copy.deepcopy(demo_scenes.items)
    (first,) = [i for i in items if i["properties"]["datetime"].startswith(FIRST)]
    twin = copy.deepcopy(first)
    twin["id"] = first["id"].replace("_0_L2A", "_1_L2A")
    twin["properties"]["eo:cloud_cover"] = 21.0
    items.append(twin)
    write_items(Path(pipeline["stac"].source), items)
    home = dagster_home(tmp_path / "dagster_home")
    with dg.DagsterInstance.from_config(str(home)):
        pass  # create the SQLite storage once, before the concurrent runs
    return SimpleNamespace(items=items, home=home, env=child_env(home, tmp_path / "child_tmp"), logs=tmp_path / "logs")


def expected_ids(items: list[dict], day: str) -> list[str]:
    """What the items file says one date holds (its datetimes are UTC)."""
    return sorted(i["id"] for i in items if i["properties"]["datetime"].startswith(day))


def params(pipeline, names, partition, pauses) -> dict:
    return {
        "assets": names, "partition": partition, "items": pipeline["stac"].source,
        "endpoint": pipeline["reader"].endpoint_url, "storage": pipeline["storage"].root,
        "pause": [{"target": str(t), "at": "before_write", "then": "gate"} for t in pauses],
    }


def run_together(runs: list[dict], shared) -> list[dict]:
    """Start all children at once; at each gated write wait until every child is there, release
    them together; return their RESULTs (in the order of ``runs``)."""
    gates = {len(r["pause"]) for r in runs}
    assert len(gates) == 1
    with children(*runs, env=shared.env, logs=shared.logs) as kids:
        for _ in range(gates.pop()):
            waiting = list(kids)
            while waiting:
                kid, _ = wait_any(waiting, "READY")
                waiting.remove(kid)
            for kid in kids:
                kid.release()
        return [kid.finish() for kid in kids]


def assert_runs_succeeded(results: list[dict], home: Path) -> None:
    assert all(r["success"] and r["status"] == "SUCCESS" and r["checks_passed"] for r in results), results
    # a step that failed and succeeded only when the retry policy re-ran it is a failure here
    assert [r["retries"] for r in results] == [0] * len(results), [r["failures"] for r in results]
    assert len({r["run_id"] for r in results}) == len(results)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for r in results:
            assert instance.get_run_by_id(r["run_id"]).status == dg.DagsterRunStatus.SUCCESS
        # every pool slot the runs claimed was given back
        assert instance.event_log_storage.get_concurrency_info("s3_reads").claimed_slots == []


def assert_collection_holds(root: str, items: list[dict], days: list[str], bands: list[str]) -> None:
    """Exactly the items file's scenes for each date: nothing lost, nothing doubled, readable."""
    collection = Collection.open(root)
    assert [d.isoformat() for d in collection.dates()] == sorted(days)
    assert sorted(collection.bands) == sorted(bands)
    frame = gpd.read_parquet(root)  # every partition, as any GeoParquet reader sees them
    assert frame.crs.to_epsg() == 4326 and frame.geometry.is_valid.all()
    rows = Counter(zip(frame["date"].astype(str), frame["id"]))
    assert rows == Counter((day, i) for day in days for i in expected_ids(items, day))
    for day in days:
        assert sorted(s.id for s in collection.scenes(date_range=(day, day))) == expected_ids(items, day)
        folder = Path(root) / f"date={day}"
        assert sorted(p.name for p in folder.iterdir()) == ["part.parquet"]  # no partial or temporary file
    assert json.loads((Path(root) / "_rasteret_collection.json").read_text())["bands"] == collection.bands
    assert not list(Path(root).rglob(".*.tmp"))


def collection_gates(root: str, day: str) -> list[Path]:
    return [Path(root) / "_rasteret_collection.json", Path(root) / f"date={day}" / "part.parquet"]


def test_the_same_date_twice_at_once_keeps_each_scene_once(pipeline, shared):
    root = pipeline["storage"].collection_root
    run = params(pipeline, ["scene_collection"], FIRST, collection_gates(root, FIRST))
    results = run_together([run, run], shared)
    assert_runs_succeeded(results, shared.home)
    for r in results:
        assert sorted(r["metadata"]["scene_collection"]["scene_ids"]) == expected_ids(shared.items, FIRST)
    assert_collection_holds(root, shared.items, [FIRST], pipeline["stac"].harvest_bands())


def test_different_dates_at_once_create_one_collection_with_both(pipeline, shared):
    root = pipeline["storage"].collection_root
    assert not Path(root).exists()  # both runs create the collection at the same time
    runs = [params(pipeline, ["scene_collection"], day, collection_gates(root, day)) for day in (FIRST, SECOND)]
    results = run_together(runs, shared)
    assert_runs_succeeded(results, shared.home)
    for r, day in zip(results, (FIRST, SECOND)):
        assert sorted(r["metadata"]["scene_collection"]["scene_ids"]) == expected_ids(shared.items, day)
    assert_collection_holds(root, shared.items, [FIRST, SECOND], pipeline["stac"].harvest_bands())


def test_statistics_of_two_aois_written_at_once_are_both_kept(pipeline, shared):
    with dg.DagsterInstance.from_config(str(shared.home)) as instance:
        dg.materialize([defs.get_assets_def("scene_collection")], partition_key=FIRST, resources=pipeline,
                       instance=instance)
    stats_root = Path(pipeline["storage"].stats_root)
    runs = [params(pipeline, ["ndvi", "ndvi_stats"], {"date": FIRST, "aoi": aoi},
                   [stats_root / f"date={FIRST}" / f"aoi={aoi}.parquet"]) for aoi in AOI_PAIR]
    results = run_together(runs, shared)
    assert_runs_succeeded(results, shared.home)
    table = read_stats(stats_root)
    want = Counter()
    for r, aoi in zip(results, AOI_PAIR):
        assert r["metadata"]["ndvi"]["scene_ids"] == expected_ids(shared.items, FIRST)
        want[(FIRST, aoi, tuple(r["metadata"]["ndvi"]["scene_ids"]))] += 1
    got = Counter((d, a, tuple(sorted(ids))) for d, a, ids in zip(table.date.dt.strftime("%Y-%m-%d"), table.aoi, table.scene_ids))
    assert got == want  # one row per AOI and date, none lost
    assert (table.valid_pixels > 0).all()
    assert sorted(p.name for p in (stats_root / f"date={FIRST}").iterdir()) == sorted(f"aoi={a}.parquet" for a in AOI_PAIR)
