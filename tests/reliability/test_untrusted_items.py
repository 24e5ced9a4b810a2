"""Malformed STAC items, derived from the real Earth Search item of the fixture scene: each
is a recorded failure naming the item and the field, and the good items of the same date are
written (one bad item no longer aborts a whole date with a bare Python error)."""

from __future__ import annotations

import copy
import json

import pytest

from rasteret_core.collection import build_collection, Collection
from rasteret_core.errors import InvalidItemError
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.stac.validate import check_item
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.reliability.test_hostile_files import S2_B04

S2_DIR = S2_B04.parent
S2_ITEM = json.loads((S2_DIR / "S2A_29RKH_20200219_0_L2A.json").read_text())
BASE = copy.deepcopy(S2_ITEM)  # the real item, its assets served by the local object store
for _asset in BASE["assets"].values():
    _asset["href"] = f"s3://sentinel-cogs/{_asset['href'].rsplit('/', 1)[-1]}"
BASE["assets"]["red"].setdefault("raster:bands", [{}])


def _variant(item_id: str, edit) -> dict:
    item = copy.deepcopy(BASE)
    item["id"] = item_id
    edit(item)
    return item


def _set(path: str, value):
    def edit(item):
        *parents, last = path.split(".")
        target = item
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


BAD = {
    "garbage-datetime": ("properties.datetime", _set("properties.datetime", "last tuesday")),
    "numeric-datetime": ("properties.datetime", _set("properties.datetime", 1582108000)),
    "three-number-bbox": ("bbox", _set("bbox", [-9.0, 29.0, -8.0])),
    "cloud-cover-1e400": ("properties.eo:cloud_cover", _set("properties.eo:cloud_cover", "CLOUD_1E400")),
    "cloud-cover-negative": ("properties.eo:cloud_cover", _set("properties.eo:cloud_cover", -5)),
    "proj-shape-strings": ("assets.red.proj:shape", _set("assets.red.proj:shape", ["10980", "10980"])),
    "string-scale": ("assets.red.raster:bands[0].scale", lambda i: i["assets"]["red"]["raster:bands"][0].update(scale="0.0001")),
    "properties-list": ("properties", _set("properties", [["datetime", "2020-02-19T11:19:41Z"]])),
}


@pytest.fixture(scope="module")
def fixture_store():
    with ObjectStoreServer(buckets={"sentinel-cogs": S2_DIR}) as server:
        yield server


def test_malformed_items_are_failures_naming_the_field_and_the_rest_is_written(tmp_path, fixture_store,
                                                                              record_property):
    items = [_variant(S2_ITEM["id"], lambda item: None)] + [_variant(name, edit) for name, (_f, edit) in BAD.items()]
    text = json.dumps({"type": "FeatureCollection", "features": items}).replace('"CLOUD_1E400"', "1e400")
    items_file = tmp_path / "items.json"
    items_file.write_text(text)
    source = DataSource.from_items_file(items_file, dict(DataSources.SENTINEL2.band_map))
    report = build_collection(source, root=tmp_path / "collection", date_range=("2020-02-19", "2020-02-19"),
                              bands=["B04", "B08", "SCL"], progress=False,
                              reader_options={"endpoint_url": fixture_store.endpoint_url})
    failed = {f.item_id: f.error for f in report.failures}
    assert set(failed) == set(BAD), failed
    for name, (field, _edit) in BAD.items():
        assert failed[name].startswith("InvalidItemError") and f"'{name}'" in failed[name] and field in failed[name]
    assert [s.id for s in Collection.open(str(tmp_path / "collection")).scenes()] == [S2_ITEM["id"]]
    record_property("reliability.malformed_items", len(BAD))


def test_the_real_items_of_every_fixture_source_are_valid():
    """No false alarms: the real Earth Search, landsatlook and Planetary Computer items pass."""
    from tests.helpers.servers import FIXTURES

    paths = [S2_DIR / "S2A_29RKH_20200219_0_L2A.json", *sorted((FIXTURES / "odc-stac/tests/data").glob("*.json"))]
    checked = 0
    for path in paths:
        data = json.loads(path.read_text())
        for item in data.get("features", [data]) if isinstance(data, dict) else data:
            if isinstance(item, dict) and item.get("type") == "Feature":
                check_item(item)
                checked += 1
    assert checked >= 3


def test_an_invalid_item_error_names_item_field_and_value():
    with pytest.raises(InvalidItemError) as info:
        check_item({**S2_ITEM, "bbox": [1, 2, 3]})
    assert (info.value.item_id, info.value.field) == (S2_ITEM["id"], "bbox") and "[1, 2, 3]" in str(info.value)


# --- storage: a failed write changes nothing ------------------------------------------------
_FULL_DISK_CHILD = """
import resource, signal, sys, json

from rasteret_core.collection import Collection
from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSource, DataSources
params = json.loads(sys.argv[1])
source = DataSource.from_items_file(params["items"], dict(DataSources.SENTINEL2.band_map))
from rasteret_core.stac.local_items import load_items
scenes = harvest(load_items(params["items"]), source, bands=["B04", "B08"], progress=False,
                 reader_options={"endpoint_url": params["endpoint"]}).scenes
coll = Collection.open(params["root"])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as a full disk fails
resource.setrlimit(resource.RLIMIT_FSIZE, (params["limit"], params["limit"]))
try:
    coll.write_date(scenes[0].datetime.date(), scenes)
    print("RESULT " + json.dumps({"error": None}))
except Exception as exc:
    print("RESULT " + json.dumps({"type": type(exc).__name__, "error": str(exc), "oserror": isinstance(exc, OSError)}))
"""


def test_a_write_failing_for_lack_of_space_changes_nothing_and_names_the_path(tmp_path, fixture_store, record_property):
    import subprocess
    import sys
    from pathlib import Path

    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": [_variant(S2_ITEM["id"], lambda i: None)]}))
    source = DataSource.from_items_file(items_file, dict(DataSources.SENTINEL2.band_map))
    root = tmp_path / "collection"
    build_collection(source, root=root, date_range=("2020-02-19", "2020-02-19"), bands=["B04"], progress=False,
                     reader_options={"endpoint_url": fixture_store.endpoint_url})
    before = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    metadata = before["_rasteret_collection.json"]
    partition = next(v for k, v in before.items() if k.endswith(".parquet"))
    # room for the metadata file, not for the partition with its new band: the order of the
    # writes decides whether the metadata changes
    limit = len(metadata) + 2048
    assert limit < len(partition)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, json.dumps(
        {"items": str(items_file), "endpoint": fixture_store.endpoint_url, "root": str(root), "limit": limit})],
        cwd=repo, env={**__import__("os").environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True, timeout=120)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, done.stderr[-2000:]
    outcome = json.loads(line[-1][7:])
    assert outcome["type"] == "StorageError" and outcome["oserror"], outcome
    assert "cannot write" in outcome["error"] and str(root) in outcome["error"]  # names the path
    after = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    # the partition is unchanged and no temporary is left; the metadata file is written first
    # (so a writer killed in between never leaves a stored band it does not list): it may only
    # have gained the band that failed to land
    data_files = lambda files: {k: v for k, v in files.items() if not k.startswith((".", "_"))}  # noqa: E731
    assert data_files(after) == data_files(before)
    assert not [k for k in after if k.endswith(".tmp")]
    meta_before, meta_after = json.loads(metadata), json.loads(after["_rasteret_collection.json"])
    assert set(meta_after["bands"]) >= set(meta_before["bands"])
    assert {k: v for k, v in meta_after.items() if k != "bands"} == {k: v for k, v in meta_before.items() if k != "bands"}
    assert Collection.open(root).scenes(bands=["B04"])  # what was stored still reads
    record_property("reliability.failed_writes_unchanged", 1)
