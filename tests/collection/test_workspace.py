"""Workspace: location, collection names, listing and loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from rasteret_core import workspace as ws
from rasteret_core.collection import build_collection
from rasteret_core.stac.sources import DataSource, DataSources

from .conftest import S2_BAND_MAP


def test_workspace_defaults_to_home_and_follows_the_env_var_and_argument(monkeypatch, tmp_path):
    monkeypatch.delenv("RASTERET_WORKSPACE", raising=False)
    assert ws.resolve_workspace() == str(Path.home() / "rasteret_workspace")
    monkeypatch.setenv("RASTERET_WORKSPACE", str(tmp_path / "from_env"))
    assert ws.resolve_workspace() == str(tmp_path / "from_env")
    assert ws.resolve_workspace(tmp_path / "arg") == str(tmp_path / "arg")


def test_collection_names_follow_the_seed_pattern():
    assert ws.collection_name("bangalore", ("2024-01-01", "2024-12-31"), DataSources.LANDSAT) == "bangalore_202401-12_landsat"
    assert ws.collection_name("bangalore", ("2024-01-01", "2024-03-31"), "sentinel-2-l2a") == "bangalore_202401-03_sentinel"
    assert ws.collection_name("x", ("2023-11-01", "2024-02-28"), DataSources.SENTINEL2) == "x_202311-202402_sentinel"


@pytest.mark.parametrize(
    "name", ["", "../etc", "a/b", "a\\b", "..", ".hidden", "a b", "name;rm", "x" * 129, "bangalore/../../x", "é"]
)
def test_invalid_collection_names_are_value_errors(name):
    with pytest.raises(ValueError):
        ws.validate_name(name)


def test_invalid_custom_name_is_refused_when_building_a_name():
    with pytest.raises(ValueError):
        ws.collection_name("../up", ("2024-01-01", "2024-01-31"), DataSources.SENTINEL2)


def test_list_and_load_collections(tmp_path, s2_items_file):
    source = DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    name = ws.collection_name("blr", ("2024-01-01", "2024-01-31"), source)
    build_collection(source, root=ws.collection_root(name, tmp_path), date_range=("2024-01-01", "2024-01-31"),
                     bands=["B04"], progress=False)
    (tmp_path / "not_a_collection").mkdir()
    listed = ws.list_collections(tmp_path)
    assert [(c["name"], c["data_source"], c["date_range"], c["size"]) for c in listed] == [
        (name, "s2-synthetic", ("2024-01-05", "2024-01-15"), 6)
    ]
    coll = ws.load_collection(name, tmp_path)
    assert coll.name == name and coll.bands == ["B04"] and coll.data_source == source
    with pytest.raises(ValueError, match="no collection named 'missing'"):
        ws.load_collection("missing", tmp_path)
    with pytest.raises(ValueError, match="invalid collection name"):
        ws.load_collection("../" + name, tmp_path)


def test_empty_or_absent_workspace_lists_nothing(tmp_path):
    assert ws.list_collections(tmp_path / "absent") == []
