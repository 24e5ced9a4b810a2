"""Derived real-data scenes (see ``scenes.py``) served by the project's object store."""

from __future__ import annotations

import json

import pytest

from rasteret_core.testing.object_store import ObjectStoreServer
from tests.ndvi import scenes as S


@pytest.fixture(scope="session")
def mosaic_scenes(shared_fixtures_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mosaic_scenes")
    with ObjectStoreServer(buckets={"public": shared_fixtures_dir, "scenes": folder}) as server:
        built = S.build(folder, server.url)
        items = folder / "items.json"
        items.write_text(json.dumps({"type": "FeatureCollection", "features": [s.item for s in built]}))
        yield server, built, items
