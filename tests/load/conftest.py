"""A collection of the real Sentinel-2 scene (rio-tiler-pds fixture + its Earth Search item),
served by the local object store as ``s3://public/...``.

The second date is the same item re-dated five days later (a real revisit interval) so time
steps can be counted; its pixels are the same files.
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection import Collection
from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSources
from tests.helpers.servers import FIXTURES

S2_KEY = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
S2_DIR = FIXTURES / S2_KEY
BANDS = ["B04", "B08", "SCL"]


def real_items() -> list[dict]:
    item = json.loads((S2_DIR / "S2A_29RKH_20200219_0_L2A.json").read_text())
    for asset in item["assets"].values():
        name = asset["href"].rsplit("/", 1)[-1]
        asset["href"] = f"s3://public/{S2_KEY}/{name}"
    later = copy.deepcopy(item)
    later["id"] = "S2A_29RKH_20200224_0_L2A"
    later["properties"]["datetime"] = "2020-02-24T11:34:25.405000Z"
    return [item, later]


@pytest.fixture(scope="session")
def s2_options(object_store) -> ReaderOptions:
    return ReaderOptions(endpoint_url=object_store.endpoint_url)


def harvested_collection(root, items: list[dict], bands: list[str], options: ReaderOptions, name: str) -> Collection:
    """A collection of ``items`` with each band's header harvested through ``options``."""
    result = harvest(items, DataSources.SENTINEL2, bands=bands, reader_options=options, progress=False)
    assert not result.failures, result.failures
    coll = Collection.create(root, name=name, data_source=DataSources.SENTINEL2, bands=bands)
    by_date: dict[dt.date, list] = {}
    for scene in result.scenes:
        by_date.setdefault(scene.datetime.date(), []).append(scene)
    for date, scenes in by_date.items():
        coll.write_date(date, scenes)
    return coll


@pytest.fixture(scope="session")
def s2_collection(object_store, s2_options, tmp_path_factory) -> Collection:
    return harvested_collection(tmp_path_factory.mktemp("load") / "s2", real_items(), BANDS, s2_options, "s2")


def tile_spans(collection: Collection) -> set[tuple[int, int]]:
    """Every stored tile's [start, end) over every image (full resolution and overviews)."""
    spans = set()
    for scene in collection.scenes():
        for asset in scene.bands.values():
            for image in (asset.header, *asset.header.overviews):
                for off, cnt in zip(image.tile_offsets, image.tile_byte_counts):
                    spans.add((int(off), int(off + cnt)))
    return spans


def only_tile_ranges(records, spans: set[tuple[int, int]]) -> bool:
    """True when every request asks for bytes that start and end on stored tile boundaries
    (so it is a tile read, possibly merged, never a header read)."""
    starts = {s for s, _ in spans}
    ends = {e for _, e in spans}
    for r in records:
        if not r.range:
            return False
        first, last = r.range.split("=", 1)[1].split("-")
        if int(first) not in starts or int(last) + 1 not in ends:
            return False
    return True
