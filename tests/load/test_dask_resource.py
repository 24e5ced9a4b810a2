"""The pipelines' DaskCluster resource: in-process by default, or a cluster address, same values."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from rasteret_core.load import load
from rasteret_pipelines.defs.resources import DaskCluster, resources

distributed = pytest.importorskip("distributed")


def _asset(collection, options):
    @dg.asset
    def b04_mean(dask: DaskCluster) -> dg.MaterializeResult:
        ds = load(collection, ["B04"], resolution=400, reader_options=options)
        with dask.scheduler() as kw:
            values = ds.B04.where(ds.B04 != 0).mean(["y", "x"]).compute(**kw).values
        return dg.MaterializeResult(metadata={"means": [float(v) for v in values]})

    return b04_mean


def _means(asset, resource) -> list[float]:
    result = dg.materialize([asset], resources={"dask": resource})
    assert result.success
    mats = result.asset_materializations_for_node("b04_mean")
    return mats[0].metadata["means"].value


def test_the_default_is_in_process_and_registered_with_the_definitions():
    assert DaskCluster().address == ""
    assert "dask" in resources().resources


def test_a_cluster_address_computes_the_in_process_values(s2_collection, s2_options):
    asset = _asset(s2_collection, s2_options)
    here = _means(asset, DaskCluster())
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None, protocol="tcp://",
                                  host="127.0.0.1") as cluster:
        there = _means(asset, DaskCluster(address=cluster.scheduler_address))
    assert len(here) == 2 and all(v > 0 for v in here)
    np.testing.assert_allclose(there, here)
