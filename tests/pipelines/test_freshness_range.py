"""The yesterday_present checks judge only dates the deployment has partitions for: the demo,
whose dates end in January 2024, stays green after a backfill; a real gap still fails."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from rasteret_pipelines.defs.automation import _freshness_result


def test_a_yesterday_outside_the_configured_dates_passes_with_a_note(monkeypatch):
    monkeypatch.setenv("RASTERET_START_DATE", "2024-01-05")
    monkeypatch.setenv("RASTERET_END_DATE", "2024-01-15")
    with dg.instance_for_test() as instance:
        result = _freshness_result(instance, "ndvi", dt.datetime(2026, 12, 4, 10, tzinfo=dt.timezone.utc))
    assert result.passed
    assert "2026-12-03 is outside the configured partitions (2024-01-05 to 2024-01-15)" in result.description


def test_a_missing_yesterday_inside_the_configured_dates_still_fails(monkeypatch):
    monkeypatch.setenv("RASTERET_START_DATE", "2024-01-01")
    monkeypatch.delenv("RASTERET_END_DATE", raising=False)
    with dg.instance_for_test() as instance:
        result = _freshness_result(instance, "scene_collection", dt.datetime(2026, 12, 4, 10, tzinfo=dt.timezone.utc))
    assert not result.passed
    assert "scene_collection for 2026-12-03 missing" in result.description


def test_a_run_over_dates_without_scenes_leaves_the_run_figures_out(pipeline, instance):
    from rasteret_pipelines.definitions import defs
    from rasteret_pipelines.defs.partitions import partition_key

    day = "2024-01-06"  # the demo has scenes on the 5th, 10th and 15th
    assert dg.materialize([defs.get_assets_def("scene_collection")], partition_key=day, resources=pipeline,
                          instance=instance).success
    key = partition_key(day, "hesaraghatta_farm")
    assert dg.materialize([defs.get_assets_def("ndvi")], partition_key=key, resources=pipeline, instance=instance).success
    meta = instance.fetch_materializations(dg.AssetKey("ndvi"), limit=1).records[0].asset_materialization.metadata
    assert meta["rasters"].value == 0 and "explicit empty result" in meta["note"].value  # said per partition
    assert "planned_requests" not in meta and "run_requests" not in meta  # no zeros for the asset's plots
    assert "no scene with pixels" in meta["run_note"].value
