"""load() on a dask.distributed LocalCluster with 2 process workers: the same values as the
threaded scheduler, only tile requests at the server, credentials from the workers' own AWS
chain (never in the graph), and a to_zarr larger than the workers' memory that streams."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection import Collection
from rasteret_core.collection.harvest import harvest
from rasteret_core.load import load
from rasteret_core.stac.sources import DataSources
from tests.load.conftest import BANDS, only_tile_ranges, real_items, tile_spans

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

WORKER_MEMORY = 400 * 2**20
"""Per worker. An idle worker with rasteret, rasterio, xarray and zarr imported holds about 280 MiB."""


@pytest.fixture(scope="module")
def cluster_client(object_store):
    # the workers start here, so they inherit this environment (the AWS chain they sign with)
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "AKIATESTRASTERETLOAD")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "rasteret/load/test/secret/0000000000000")
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, memory_limit=WORKER_MEMORY,
                                      dashboard_address=None, host="127.0.0.1") as cluster:
            with distributed.Client(cluster) as client:
                yield client
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def payer_collection(object_store, cluster_client, tmp_path_factory):
    """The same real scene in the requester-pays bucket, harvested with signed requests."""
    items = real_items()
    for item in items:
        for asset in item["assets"].values():
            asset["href"] = asset["href"].replace("s3://public/", "s3://payer/")
    options = ReaderOptions(endpoint_url=object_store.endpoint_url, requester_pays=True,
                            aws_access_key_id="AKIATESTRASTERETLOAD",
                            aws_secret_access_key="rasteret/load/test/secret/0000000000000")
    result = harvest(items, DataSources.SENTINEL2, bands=BANDS, reader_options=options, progress=False)
    assert not result.failures, result.failures
    coll = Collection.create(tmp_path_factory.mktemp("payer") / "s2", name="s2p", data_source=DataSources.SENTINEL2,
                             bands=BANDS)
    for scene in result.scenes:
        coll.write_date(scene.datetime.date(), [scene])
    return coll


def test_two_process_workers_compute_the_threaded_values_with_only_tile_requests(
        cluster_client, payer_collection, object_store, store):
    options = ReaderOptions(endpoint_url=object_store.endpoint_url, requester_pays=True)
    ds = load(payer_collection, ["B04", "SCL"], crs="EPSG:3857", resolution=150, chunks={"x": 256, "y": 256},
              reader_options=options)
    for name in ("B04", "SCL"):
        assert b"rasteret/load/test/secret" not in pickle.dumps(dict(ds[name].data.__dask_graph__()))
    on_cluster = ds.compute()  # the Client is the default scheduler
    records = store.requests_for("/payer/*")
    assert records and only_tile_ranges(records, tile_spans(payer_collection))
    assert all(r.signed and r.requester_pays for r in records)
    workers = cluster_client.run(lambda: __import__("rasteret_core.load", fromlist=["x"]).process_stats())
    assert len(workers) == 2 and all(w["header_requests"] == 0 for w in workers.values())
    assert sum(w["requests"] for w in workers.values()) == len(records)
    store.reset_stats()
    threaded = ds.compute(scheduler="threads")
    for name in ("B04", "SCL"):
        np.testing.assert_array_equal(on_cluster[name].values, threaded[name].values)
        assert (on_cluster[name].values != 0).sum() > 300_000


def test_to_zarr_of_an_area_larger_than_the_workers_memory_streams(cluster_client, s2_collection, s2_options, tmp_path):
    # physical float64 at 8 m over the scene: 13,725 x 13,725 px = 1.4 GiB for one date
    ds = load(s2_collection, ["B04"], resolution=8, physical=True, dtype="float64", chunks={"x": 1024, "y": 1024},
              reader_options=s2_options, tile_cache_bytes=8 * 2**20).isel(time=[0])
    assert ds.B04.nbytes > 3 * WORKER_MEMORY
    before = set(cluster_client.scheduler_info()["workers"])
    ds.to_zarr(tmp_path / "big.zarr", mode="w")
    after = set(cluster_client.scheduler_info()["workers"])
    assert before == after  # no worker was killed for memory and restarted
    stored = __import__("xarray").open_zarr(tmp_path / "big.zarr")
    window = dict(time=0, y=slice(5000, 5300), x=slice(9000, 9400))
    np.testing.assert_array_equal(stored.B04.isel(**window).values, ds.B04.isel(**window).compute(scheduler="threads").values)
    assert np.isfinite(stored.B04.isel(**window).values).all()
