"""No green run deletes outputs because an input vanished: a bad minute of the STAC API (an
empty search) keeps the date's collection partition, and an NDVI run over a date whose
partition is gone keeps the stored GeoTIFFs and fails saying why."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rasteret_core.collection import Collection

from .conftest import write_items
from .test_assets import COLLECTION, NDVI, materialize, ndvi_key

DAY = "2024-01-10"


def ndvi_files(pipeline) -> list[Path]:
    return sorted(Path(pipeline["storage"].root).rglob(f"*{DAY}*/*.tif")) or sorted(
        p for p in Path(pipeline["storage"].root).rglob("*.tif") if DAY in str(p))


def test_an_empty_search_keeps_the_partition_and_the_ndvi_outputs(pipeline, instance, tmp_path):
    materialize(COLLECTION, DAY, pipeline, instance)
    assert materialize(NDVI, ndvi_key(DAY), pipeline, instance).success
    outputs = {p: p.read_bytes() for p in ndvi_files(pipeline)}
    assert outputs
    # the STAC API has a bad minute: the same date's search returns nothing
    write_items(Path(pipeline["stac"].source), [])
    empty = materialize(COLLECTION, DAY, pipeline, instance, raise_on_error=False)
    root = pipeline["storage"].collection_root
    assert Collection.open(root).scenes(date_range=(DAY, DAY))  # the partition is still there
    assert empty.success
    assert materialize(NDVI, ndvi_key(DAY), pipeline, instance).success
    assert {p: p.read_bytes() for p in ndvi_files(pipeline)} == outputs


def test_ndvi_over_a_vanished_partition_keeps_the_outputs_and_fails_saying_why(pipeline, instance):
    materialize(COLLECTION, DAY, pipeline, instance)
    assert materialize(NDVI, ndvi_key(DAY), pipeline, instance).success
    outputs = {p: p.read_bytes() for p in ndvi_files(pipeline)}
    assert outputs
    Collection.open(pipeline["storage"].collection_root).delete_date(DAY)  # a teammate removed the date
    result = materialize(NDVI, ndvi_key(DAY), pipeline, instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)
    assert DAY in text and "outputs were kept" in text
    assert {p: p.read_bytes() for p in ndvi_files(pipeline)} == outputs
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
                and e.asset_key == dg.AssetKey("ndvi")]
