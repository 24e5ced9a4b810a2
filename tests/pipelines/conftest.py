"""Pipelines under test: the demo's synthetic scenes served by a local S3-compatible server,
a local items file as the STAC source, and a real temporary Dagster instance."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_core.testing.synthetic import TileGrid, s2_like_item, write_scene
from rasteret_pipelines.defs.partitions import sync_aois
from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage
from rasteret_pipelines.settings import aoi_file, aoi_names

BUCKET, PREFIX = "sentinel-cogs", "tiles/43/P/GQ"
DATES = [(5, 4.0), (10, 38.0), (15, 11.0)]


@dataclass
class Scenes:
    folder: Path
    items: list[dict]

    def path(self, scene_id: str, band: str) -> Path:
        return self.folder / PREFIX / scene_id / f"{band}.tif"


@pytest.fixture(scope="session")
def demo_scenes(tmp_path_factory) -> Scenes:
    folder = tmp_path_factory.mktemp("pipeline_scenes")
    grid = TileGrid(size=1024)
    items = []
    for day, cover in DATES:
        when = dt.datetime(2024, 1, day, 5, 12, tzinfo=dt.timezone.utc)
        scene_id = f"S2A_43PGQ_{when:%Y%m%d}_0_L2A"
        write_scene(folder / PREFIX / scene_id, grid, when, cover, seed=3)
        items.append(s2_like_item(scene_id, when, grid, cover, href_base=f"s3://{BUCKET}/{PREFIX}"))
    return Scenes(folder, items)


@pytest.fixture(scope="session")
def scene_server(demo_scenes):
    with ObjectStoreServer(buckets={BUCKET: demo_scenes.folder}) as server:
        yield server


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        sync_aois(inst, aoi_names(aoi_file()))  # what the aoi_source sensor does in a deployment
        yield inst


def write_items(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


@pytest.fixture
def pipeline(tmp_path, demo_scenes, scene_server):
    """Resources pointing the definitions at the local scenes; ``items`` can be rewritten."""
    items_file = write_items(tmp_path / "items.json", demo_scenes.items)
    return {
        "stac": StacSource(source=str(items_file)),
        "reader": CogReader(endpoint_url=scene_server.endpoint_url, retries=1),
        "storage": Storage(root=str(tmp_path / "storage")),
        "aois": Aois(),
        "dask": DaskCluster(),
    }
