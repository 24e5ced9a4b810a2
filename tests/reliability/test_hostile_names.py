"""Hostile names through the whole pipeline: a scene id made of ``../`` cannot write outside
the storage root or over another output, and third-party text in the Dagster UI's Markdown
metadata renders as text (no image loads for every viewer)."""

from __future__ import annotations

import re

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasteret_core.errors import UnsafePathError
from rasteret_core.names import check_under, MAX_LENGTH, original_name, path_under, safe_name
from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.markdown import md_table, md_text
from rasteret_pipelines.defs.partitions import sync_aois
from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage
from rasteret_pipelines.settings import aoi_file, aoi_names
from tests.pipelines.conftest import BUCKET, PREFIX, write_items

ESCAPING_ID = "../../../../../ESCAPED"
TRACKER = "![](https://tracker.test/pixel.png)"


def _markdown_values(instance, keys) -> list[str]:
    out = []
    for key in keys:
        for record in instance.fetch_materializations(dg.AssetKey(key), limit=100).records:
            for value in record.asset_materialization.metadata.values():
                if isinstance(value, dg.MarkdownMetadataValue):
                    out.append(value.md_str)
    return out


def test_scene_ids_cannot_leave_storage_and_error_text_renders_as_text(tmp_path, demo_scenes, scene_server,
                                                                       record_property):
    items = [dict(i) for i in demo_scenes.items]
    escaping = {**items[0], "id": ESCAPING_ID}
    tracking = {**items[0], "id": f"S2A_43PGQ_20240105_1_L2A{TRACKER}"}
    tracking["assets"] = {**tracking["assets"], "red": {**tracking["assets"]["red"],
                          "href": f"s3://{BUCKET}/{PREFIX}/{TRACKER}/B04.tif"}}
    root = tmp_path / "a" / "b" / "c" / "storage"
    resources = {
        "stac": StacSource(source=str(write_items(tmp_path / "items.json", [escaping, tracking] + items[1:]))),
        "reader": CogReader(endpoint_url=scene_server.endpoint_url, retries=0),
        "storage": Storage(root=str(root)),
        "aois": Aois(),
        "dask": DaskCluster(),
    }
    with dg.instance_for_test() as instance:
        sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor's job in a deployment
        assert dg.materialize([defs.get_assets_def("scene_collection")], partition_key="2024-01-05",
                              resources=resources, instance=instance).success
        key = dg.MultiPartitionKey({"date": "2024-01-05", "aoi": "hesaraghatta_farm"})
        assert dg.materialize([defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")], partition_key=key,
                              resources=resources, instance=instance).success
        markdown = _markdown_values(instance, ["scene_collection", "ndvi", "ndvi_stats"])

    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    outside = [p for p in written if not p.startswith("a/b/c/storage/") and p != "items.json"]
    assert outside == []  # nothing escaped, not even into a/b/c
    ndvi_files = sorted(p.name for p in (root / "ndvi" / "hesaraghatta_farm" / "2024-01-05").iterdir())
    assert ndvi_files == ["ndvi.json", "ndvi.tif"]  # one mosaic per date x AOI: no name comes from a scene id
    # the id survives the round trip to the statistics table unchanged
    assert ESCAPING_ID in {i for ids in read_stats(str(root / "ndvi_stats"))["scene_ids"] for i in ids}
    failures = [md for md in markdown if "tracker.test" in md]
    assert failures  # the broken asset is reported...
    for md in markdown:  # ...and no third-party text becomes an image, a link or HTML
        # escaped characters are text; our own PNG embeds (alt text escaped) are the only images allowed
        live = re.sub(r"!\[[^\]]*\]\(data:image/png;base64,", "", re.sub(r"\\.", "", md))
        assert "![" not in live and "](" not in live and "<" not in live
    record_property("reliability.hostile_names", 2)


@pytest.mark.parametrize("name", [ESCAPING_ID, "..", ".", "", "a/b", "a\\b", "North Field", "x" * 400, "é\x00\n"])
def test_path_under_keeps_every_name_inside_the_root(tmp_path, name):
    path = path_under(tmp_path, "ndvi", name, "2024-01-05")
    check_under(tmp_path, path)
    component = path.split("/")[-2]
    assert component not in (".", "..", "") and "/" not in component and len(component) <= MAX_LENGTH
    (tmp_path / "ndvi" / component).mkdir(parents=True)  # a real, single directory
    with pytest.raises(UnsafePathError):
        check_under(tmp_path / "ndvi", tmp_path / "ndvi" / ".." / "..")


@given(st.text(max_size=200))
def test_safe_names_are_single_components_and_reversible(name):
    component = safe_name(name)
    assert component and "/" not in component and "\x00" not in component
    assert not component.startswith(".") and len(component) <= MAX_LENGTH
    if "~~" not in component:
        assert original_name(component) == name


@given(st.text(max_size=60), st.text(max_size=60))
def test_different_names_never_share_a_path(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


def test_markdown_cells_render_third_party_text_literally():
    cell = md_text(f"{TRACKER} <img src=x onerror=alert(1)> a|b\nnext")
    assert re.search(r"(?<!\\)[!<>\[\]|`]", cell) is None  # every special character escaped
    assert "\n" not in cell and "a\\|b" in cell
    table = md_table(["scene"], [[f"{TRACKER} | extra column"]])
    assert [len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()] == [2, 2, 2]  # one column
