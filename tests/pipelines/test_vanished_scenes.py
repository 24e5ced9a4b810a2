"""No green run thins or blanks outputs because an input vanished: an NDVI mosaic made from
scenes the collection no longer holds is kept (the run fails naming the date, the AOI, the
count kept and the lost scene), and statistics are not replaced by empty rows when the NDVI
outputs they summarise are gone."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from rasteret_core.collection import Collection
from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs

from .conftest import write_items
from .test_assets import COLLECTION, FARM, NDVI, materialize, ndvi_key

FIRST = "2024-01-05"
STATS = [defs.get_assets_def("ndvi_stats")]


def failure_text(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return str(failure.event_specific_data.error)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.fixture
def twin(pipeline, demo_scenes) -> str:
    """A second scene on FIRST (same files, another id): the date's mosaic is made from two."""
    items = copy.deepcopy(demo_scenes.items)
    (first,) = [i for i in items if i["properties"]["datetime"].startswith(FIRST)]
    second = copy.deepcopy(first)
    second["id"] = first["id"].replace("_0_L2A", "_1_L2A")
    second["properties"]["eo:cloud_cover"] = 21.0
    write_items(Path(pipeline["stac"].source), [*items, second])
    return second["id"]


def test_ndvi_keeps_a_mosaic_whose_scenes_the_collection_partly_lost_and_fails_saying_why(pipeline, instance, twin):
    materialize(COLLECTION, FIRST, pipeline, instance)
    assert materialize(NDVI, ndvi_key(FIRST), pipeline, instance).success
    folder = Path(pipeline["storage"].path("ndvi", FARM, FIRST))
    outputs = snapshot(folder)
    used = json.loads(outputs["ndvi.json"])["scene_ids"]
    assert twin in used and len(used) == 2
    stats_file = Path(pipeline["storage"].stats_root) / f"date={FIRST}" / f"aoi={FARM}.parquet"
    stats = stats_file.read_bytes()
    # someone rewrote the date with one scene fewer (a prune, a search that lost an item)
    collection = Collection.open(pipeline["storage"].collection_root)
    collection.write_date(FIRST, [s for s in collection.scenes(date_range=(FIRST, FIRST)) if s.id != twin])

    result = materialize(NDVI, ndvi_key(FIRST), pipeline, instance, raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert FIRST in text and FARM in text and "outputs were kept" in text
    assert "2 output(s) kept" not in text and "1 output(s) kept" in text  # one ndvi.tif
    assert "2 scene(s) of which 1" in text and twin in text
    assert snapshot(folder) == outputs  # the mosaic of two scenes was not replaced by one of one
    assert stats_file.read_bytes() == stats  # ndvi_stats did not run on it
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]


def test_ndvi_replaces_the_mosaic_when_the_collection_still_holds_its_scenes(pipeline, instance, twin):
    materialize(COLLECTION, FIRST, pipeline, instance)
    assert materialize(NDVI, ndvi_key(FIRST), pipeline, instance).success
    folder = Path(pipeline["storage"].path("ndvi", FARM, FIRST))
    before = json.loads((folder / "ndvi.json").read_text())["scene_ids"]
    materialize(COLLECTION, FIRST, pipeline, instance)  # a refresh: same scenes
    assert materialize(NDVI, ndvi_key(FIRST), pipeline, instance).success  # an ordinary re-run stays green
    assert json.loads((folder / "ndvi.json").read_text())["scene_ids"] == before


def test_statistics_are_kept_when_the_ndvi_outputs_they_summarise_are_gone(pipeline, instance):
    day = "2024-01-10"
    materialize(COLLECTION, day, pipeline, instance)
    assert materialize(NDVI, ndvi_key(day), pipeline, instance).success
    stats_file = Path(pipeline["storage"].stats_root) / f"date={day}" / f"aoi={FARM}.parquet"
    stats = stats_file.read_bytes()
    folder = Path(pipeline["storage"].path("ndvi", FARM, day))
    for path in folder.iterdir():  # the outputs went (an earlier version's run, a hand clean-up)
        path.unlink()

    result = materialize(STATS, ndvi_key(day), pipeline, instance, raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert day in text and FARM in text and "statistics were kept" in text
    assert stats_file.read_bytes() == stats
    (row,) = read_stats(pipeline["storage"].stats_root).itertuples()
    assert np.isfinite(row.mean) and len(row.scene_ids) == 1
    assert dg.AssetKey("ndvi_stats") not in {e.asset_key for e in result.all_events
                                             if e.event_type_value == "ASSET_MATERIALIZATION"}
