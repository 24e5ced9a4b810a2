"""Credentials never reach logs, exceptions, repr(), Dagster's storage and metadata, or the
written Parquet and GeoTIFFs; names cannot escape the workspace."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg

from rasteret_pipelines.defs.partitions import sync_aois

from rasteret_pipelines.settings import aoi_file, aoi_names
import pytest

from rasteret_core.errors import AoiError
from rasteret_core.products.aois import load_aois
from rasteret_core.cog import CogError, ReaderOptions, read_header
from rasteret_core.testing.object_store import FaultRule, ObjectStoreServer
from rasteret_core.workspace import collection_root
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.resources import CogReader
from tests.pipelines.conftest import BUCKET, PREFIX, write_items

KEY_ID = "AKIARASTERETLEAKTEST1"
SECRET = "leak/test/SECRET/value/0123456789abcdefABCDEF"
TOKEN = "leaktestSESSIONtokenFwoGZXIvYXdzEJr//////////"
SIGNATURE_MARKERS = ("X-Amz-Signature", "Signature=", "Credential=AKIA", "x-amz-security-token")


def _leaks(blob: bytes) -> list[str]:
    found = [s for s in (KEY_ID, SECRET, TOKEN) if s.encode() in blob]
    return found + [m for m in SIGNATURE_MARKERS if m.encode() in blob]


def _scan_tree(root: Path) -> dict[str, list[str]]:
    hits = {}
    for path in root.rglob("*"):
        if path.is_file():
            found = _leaks(path.read_bytes())
            if found:
                hits[str(path.relative_to(root))] = found
    return hits


@pytest.fixture
def payer_store(demo_scenes):
    """The scenes in a requester-pays bucket: only signed requests that accept the charge."""
    with ObjectStoreServer(buckets={BUCKET: demo_scenes.folder}, requester_pays={BUCKET}) as server:
        yield server


@pytest.mark.parametrize("given_as", ["environment", "EnvVar"])
def test_a_full_run_with_credentials_leaves_no_trace_of_them(
    given_as, monkeypatch, tmp_path, demo_scenes, payer_store, caplog, capfd, record_property,
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    creds = {} if given_as == "environment" else {
        "aws_access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"), "aws_secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
        "aws_session_token": dg.EnvVar("AWS_SESSION_TOKEN"),
    }
    items = [dict(i) for i in demo_scenes.items]
    missing = {**items[0], "id": "S2B_43PGQ_20240105_9_L2A"}
    missing["assets"] = {**missing["assets"], "red": {**missing["assets"]["red"],
                         "href": f"s3://{BUCKET}/{PREFIX}/gone/B04.tif"}}
    from rasteret_pipelines.defs.resources import Aois, DaskCluster, StacSource, Storage

    resources = {
        "stac": StacSource(source=str(write_items(tmp_path / "items.json", items + [missing]))),
        "reader": CogReader(endpoint_url=payer_store.endpoint_url, requester_pays=True, retries=1, **creds),
        "storage": Storage(root=str(tmp_path / "storage")),
        "aois": Aois(),
        "dask": DaskCluster(),
    }
    # a throttled asset too, so an error message travels through metadata and logs
    payer_store.add_fault(FaultRule("status", f"*/{items[1]['id']}/SCL.tif", status=503, times=100))
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor's job in a deployment
        for assets, key in (
            ([defs.get_assets_def("scene_collection")], "2024-01-05"),
            ([defs.get_assets_def("scene_collection")], "2024-01-10"),
            ([defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")],
             dg.MultiPartitionKey({"date": "2024-01-05", "aoi": "hesaraghatta_farm"})),
        ):
            result = dg.materialize(assets, partition_key=key, resources=resources, instance=instance)
            assert result.success
        events = [r.asset_materialization for key in ("scene_collection", "ndvi", "ndvi_stats")
                  for r in instance.fetch_materializations(dg.AssetKey(key), limit=100).records]
        metadata_text = repr(events)
    payer_store.wait_idle()
    signed = [r for r in payer_store.requests_for() if r.status in (200, 206)]
    assert signed and all(r.signed and r.requester_pays for r in signed)  # credentials were really used
    assert "gone/B04.tif" in metadata_text  # the failure is reported...

    out, err = capfd.readouterr()
    places = {
        "materialization metadata": _leaks(metadata_text.encode()),
        "log records": [(r.name, r.getMessage()[:200]) for r in caplog.records if _leaks(r.getMessage().encode())],
        "stdout/stderr": _leaks((out + err).encode()),
        "resource repr": _leaks(repr(resources["reader"]).encode() + repr(resources["reader"].options()).encode()),
    }
    assert places == {k: [] for k in places}  # ...without any credential
    assert _scan_tree(home) == {}  # run/event storage, compute logs
    assert _scan_tree(tmp_path / "storage") == {}  # collection Parquet, NDVI GeoTIFFs, stats
    record_property("reliability.credential_scans", 1)


def test_errors_of_signed_reads_carry_no_credentials(payer_store, aws_test_credentials):
    payer_store.add_fault(FaultRule("status", status=403, times=10))
    options = dict(endpoint_url=payer_store.endpoint_url, requester_pays=True, retries=0,
                   aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=TOKEN)
    with pytest.raises(CogError) as info:
        read_header(f"s3://{BUCKET}/{PREFIX}/x.tif", **options)
    text = f"{info.value}\n{info.value!r}\n{info.value.__cause__!r}\n{info.value.__context__!r}"
    assert "403" in text and _leaks(text.encode()) == []
    assert _leaks(repr(ReaderOptions(**options)).encode()) == []


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "a\\b", "", "x" * 300, "name\n", "a..b"])
def test_collection_and_aoi_names_cannot_leave_the_workspace(tmp_path, name):
    with pytest.raises(ValueError):
        collection_root(name, tmp_path)
    aois = tmp_path / "aois.geojson"
    aois.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": %s},'
                    ' "geometry": {"type": "Polygon", "coordinates": [[[77.5, 13], [77.6, 13], [77.6, 13.1],'
                    ' [77.5, 13]]]}}]}' % __import__("json").dumps(name))
    with pytest.raises(AoiError, match="name"):
        load_aois(aois)
