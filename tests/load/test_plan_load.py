"""The plan of a lazy load equals what the object store counts when it is computed."""

from __future__ import annotations

import shapely
from rasterio.warp import transform_geom
from shapely.geometry import shape

from rasteret_core.load import load
from rasteret_core.plan import plan_load


def utm_box(x0, y0, x1, y1):
    return shape(transform_geom("EPSG:32629", "EPSG:4326", shapely.box(x0, y0, x1, y1).__geo_interface__))


def test_load_plan_equals_the_server_counts_of_the_compute(s2_collection, s2_options, store):
    aoi = utm_box(231000, 2711000, 283000, 2766000)
    ds = load(s2_collection, ["B04", "SCL"], geometry=aoi, chunks={"x": 4096, "y": 4096}, reader_options=s2_options,
              tile_cache_bytes=48 * 1024 * 1024 + 5)  # a runtime of its own: no tile cached by other tests
    plan = plan_load(ds)
    assert store.stats.requests == 0 and plan.requests > 0 and plan.scenes == 2
    ds.compute(scheduler="synchronous")
    store.wait_idle()
    assert (plan.requests, plan.bytes) == (store.stats.requests, store.stats.bytes_sent)
