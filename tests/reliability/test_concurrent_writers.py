"""Concurrent writers lose nothing: two processes refreshing one collection with different
bands at the same moment both land, on local disk (a lock) and on S3 (conditional writes,
against moto, which honours If-Match / If-None-Match on PUT as S3 does); a writer killed
with SIGKILL mid-refresh leaves every confirmed header readable."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import boto3
import pytest

from rasteret_core.collection import Collection
from tests.helpers.scenes import partition_bands, scene, small_header, stored_headers, DAY
from tests.reliability._children.collection_writer import refresh_forever, serve

ITEMS = ["a", "b", "c", "d", "e", "f"]
ROUNDS = 10


@pytest.fixture(scope="module")
def header(tmp_path_factory):
    return small_header(tmp_path_factory.mktemp("cog"))


@pytest.fixture(scope="module")
def writers():
    """Two writer processes (spawned once, reused by every round) and the barrier they share."""
    ctx = mp.get_context("spawn")
    jobs, results, barrier = ctx.Queue(), ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=serve, args=(jobs, results, barrier), daemon=True) for _ in range(2)]
    for p in procs:
        p.start()
    yield jobs, results
    for _ in procs:
        jobs.put(None)
    for p in procs:
        p.join(timeout=30)


def race(writers, root: str, options, header) -> list[tuple[str, object]]:
    jobs, results = writers
    jobs.put((root, options, ITEMS, ["B08"], header))
    jobs.put((root, options, ITEMS, ["SCL"], header))
    return [results.get(timeout=120) for _ in range(2)]


def check_round(root: str, options) -> tuple[int, bool]:
    """(headers missing, metadata agrees with the partitions)."""
    coll = Collection.open(root, storage_options=options)
    want = {(i, b) for i in ITEMS for b in ("B04", "B08", "SCL")}
    return len(want - stored_headers(coll)), partition_bands(coll) <= set(coll.bands)


def rounds_losing_a_band(writers, header, root_for, options) -> int:
    """Run :data:`ROUNDS` races on fresh collections; how many lost an (item, band) header."""
    lost_rounds = 0
    for n in range(ROUNDS):
        root = root_for(n)
        Collection.create(root, name="shared", bands=["B04"], storage_options=options).merge_date(
            DAY, [scene(i, ["B04"], header) for i in ITEMS], read_bands=["B04"])
        outcomes = race(writers, root, options, header)
        assert [o for o in outcomes if o[0] != "ok"] == []
        missing, agrees = check_round(root, options)
        assert agrees, f"round {n}: the metadata misses a band the partitions hold"
        lost_rounds += missing > 0
    return lost_rounds


def test_two_processes_refreshing_other_bands_of_a_local_collection_both_land(writers, header, tmp_path, record_property):
    lost = rounds_losing_a_band(writers, header, lambda n: str(tmp_path / f"round{n}"), None)
    record_property("reliability.concurrent_local_rounds_losing_a_band", lost)
    assert lost == 0


@pytest.fixture(scope="module")
def s3_bucket():
    from tests.helpers.servers import free_port

    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": endpoint, "access_key": "AKIDSHARED", "secret_key": "shared-secret"}
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIDSHARED", aws_secret_access_key="shared-secret",
                 region_name="us-west-2").create_bucket(
        Bucket="team", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    yield options
    server.stop()


def test_two_machines_refreshing_other_bands_on_s3_both_land(writers, header, s3_bucket, record_property):
    lost = rounds_losing_a_band(writers, header, lambda n: f"s3://team/round{n}", s3_bucket)
    record_property("reliability.concurrent_s3_rounds_losing_a_band", lost)
    assert lost == 0


@pytest.mark.parametrize("writes_before_kill", [1, 3, 6])
def test_a_writer_killed_mid_refresh_leaves_every_confirmed_header(header, tmp_path, writes_before_kill):
    root = str(tmp_path / "c")
    Collection.create(root, name="shared", bands=["B04"]).merge_date(
        DAY, [scene(i, ["B04"], header) for i in ("a", "b", "c")], read_bands=["B04"])
    ctx = mp.get_context("spawn")
    confirmed = ctx.Queue()
    proc = ctx.Process(target=refresh_forever, args=(root, header, confirmed), daemon=True)
    proc.start()
    done = [confirmed.get(timeout=120) for _ in range(writes_before_kill)]
    os.kill(proc.pid, signal.SIGKILL)  # while its next refresh is under way
    proc.join(timeout=30)
    coll = Collection.open(root)
    want = {(i, b) for i in ("a", "b", "c") for b in ["B04", *done]}
    assert want <= stored_headers(coll)
    assert partition_bands(coll) <= set(coll.bands)
    # and the next writer is not blocked by the dead one's lock
    coll.merge_date(DAY, [scene("d", ["B04"], header)], read_bands=["B04"])
    assert ("d", "B04") in stored_headers(Collection.open(root))
