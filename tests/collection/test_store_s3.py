"""An ``s3://`` collection root (team-shared storage), against a real moto S3 server."""

from __future__ import annotations

import datetime as dt
import socket

import boto3
import geopandas as gpd
import pyarrow.fs as pafs
import pytest

from rasteret_core import workspace as ws
from rasteret_core.collection import build_collection, Collection
from rasteret_core.stac.sources import DataSource

from .conftest import S2_BAND_MAP

KEY_ID, SECRET = "AKIDRASTERETTEST", "rasteret-secret-never-stored"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with a private bucket ``team-collections``.

    TODO: switch to the shared ``moto_s3`` fixture of tests/conftest.py once it exists.
    """
    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                          region_name="us-west-2")
    client.create_bucket(Bucket="team-collections", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    yield endpoint, client
    server.stop()


@pytest.fixture
def options(s3_endpoint) -> dict:
    return {"endpoint_url": s3_endpoint[0], "access_key": KEY_ID, "secret_key": SECRET}


def test_build_query_and_rewrite_a_collection_on_s3(s3_endpoint, options, s2_items_file, request):
    endpoint, client = s3_endpoint
    source = DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    root = f"s3://team-collections/{request.node.name}/blr"
    report = build_collection(source, root=root, date_range=("2024-01-01", "2024-01-31"), bands=["B04", "SCL"],
                              storage_options=options, progress=False)
    assert report.scenes == 6
    coll = Collection.open(root, storage_options=options)
    assert coll.dates() == [dt.date(2024, 1, 5), dt.date(2024, 1, 10), dt.date(2024, 1, 15)] and len(coll) == 6
    assert [s.cloud_cover for s in coll.scenes(cloud_cover_lt=10)] == [5.0, 9.0]
    assert coll.write_date(dt.date(2024, 1, 15), []).removed and len(Collection.open(root, storage_options=options)) == 4
    # other tools read it as-is through pyarrow's S3 filesystem
    fs = pafs.S3FileSystem(endpoint_override=endpoint.split("://")[1], scheme="http", access_key=KEY_ID,
                           secret_key=SECRET, region="us-west-2")
    assert len(gpd.read_parquet(root[5:], filesystem=fs)) == 4
    # no temporary objects left behind and credentials appear in no stored byte
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="team-collections", Prefix=request.node.name)["Contents"]]
    assert not any(k.rsplit("/", 1)[-1].startswith(".") for k in keys)
    for key in keys:
        body = client.get_object(Bucket="team-collections", Key=key)["Body"].read()
        assert KEY_ID.encode() not in body and SECRET.encode() not in body


def test_s3_workspace_lists_and_loads_collections(options, s2_items_file, request):
    source = DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")
    workspace = f"s3://team-collections/{request.node.name}"
    name = ws.collection_name("blr", ("2024-01-01", "2024-01-31"), source)
    build_collection(source, root=ws.collection_root(name, workspace), date_range=("2024-01-10", "2024-01-10"),
                     bands=["B04"], storage_options=options, progress=False)
    listed = ws.list_collections(workspace, storage_options=options)
    assert [(c["name"], c["size"]) for c in listed] == [(name, 2)]
    assert ws.load_collection(name, workspace, storage_options=options).bands == ["B04"]
    with pytest.raises(ValueError, match="no collection named"):
        ws.load_collection("other", workspace, storage_options=options)
