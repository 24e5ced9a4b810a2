"""A plan's requests and bytes equal what the server counts for the real read; its price follows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import shapely
from rasterio.warp import transform, transform_geom
from shapely.geometry import shape

from rasteret_core import DataSources, Rasteret
from rasteret_core.cog import read_header, ReaderOptions, ReadStats
from rasteret_core.collection import Collection
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.plan import GIB, plan_aoi_read, plan_backfill, plan_point_samples, Prices
from rasteret_core.products.ndvi import aoi_ndvi
from rasteret_core.read import read_aois, sample_points
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.collection.conftest import EPSG, make_s2_scenes, S2_BAND_MAP

S2_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B04", "B08", "SCL"]


def s2_scene(store, bucket="public", **options):
    """The real Sentinel-2 fixture scene, headers read once (as a harvest does), counters reset."""
    def href(b):
        return f"s3://{bucket}/{S2_DIR}/{b}.tif" if bucket == "payer" else store.url(bucket, f"{S2_DIR}/{b}.tif")

    bands = {b: BandAsset(b, href(b), read_header(href(b), **options)) for b in BANDS}
    store.wait_idle()
    store.reset_stats()
    return Scene("S2A_29RKH_20200219_0_L2A", "sentinel-2-l2a", dt.datetime(2020, 2, 19, 11, tzinfo=dt.timezone.utc),
                 shapely.box(-10.0, 24.3, -8.9, 25.3), bands=bands)


def lonlat_box(header, fx0, fy0, fx1, fy1):
    a, _, c, _, e, f = header.transform[:6]
    utm = shapely.box(c + fx0 * header.width * a, f + fy1 * header.height * e,
                      c + fx1 * header.width * a, f + fy0 * header.height * e)
    return shape(transform_geom(f"EPSG:{header.crs_epsg}", "EPSG:4326", utm.__geo_interface__))


def server_counts(store):
    store.wait_idle()
    return store.stats.requests, store.stats.bytes_sent


@pytest.mark.parametrize("coalesce_gap", [0, 64 * 1024, 4 * 1024 * 1024])
def test_aoi_plan_equals_the_server_counts_of_the_read(store, coalesce_gap):
    scene = s2_scene(store)
    h = scene.bands["B04"].header
    aois = {"field": lonlat_box(h, 0.2, 0.3, 0.6, 0.55), "farm": lonlat_box(h, 0.9, 0.05, 0.93, 0.08),
            "edge": lonlat_box(h, 0.95, 0.95, 1.2, 1.2)}
    options = ReaderOptions(coalesce_gap=coalesce_gap)
    plan = plan_aoi_read([scene], aois, BANDS, reader_options=options)
    assert server_counts(store) == (0, 0)  # planning fetched nothing
    stats = ReadStats()
    result = read_aois([scene], aois, BANDS, reader_options=options, stats=stats)
    assert not result.failures
    assert (plan.requests, plan.bytes) == server_counts(store)
    assert plan.compare(stats)["requests"] == (stats.requests, stats.requests)
    assert plan.compare(stats)["bytes"] == (stats.bytes_fetched, stats.bytes_fetched)
    assert plan.tiles == stats.tiles_read and plan.header_requests == stats.header_requests == 0
    assert plan.scenes == 1 and plan.windows == len(aois) * len(BANDS)
    assert plan.price_usd == 0  # a public bucket costs the reader nothing


def test_coalescing_changes_the_plan_as_it_changes_the_read(store):
    scene = s2_scene(store)
    aoi = {"big": lonlat_box(scene.bands["B04"].header, 0.05, 0.05, 0.95, 0.95)}
    tight = plan_aoi_read([scene], aoi, ["B04"], reader_options=ReaderOptions(coalesce_gap=0, max_coalesced_bytes=1))
    loose = plan_aoi_read([scene], aoi, ["B04"], reader_options=ReaderOptions())
    assert tight.requests == tight.tiles == 9 and loose.requests < tight.requests


def test_point_plan_equals_the_server_counts_of_the_read(store):
    scene = s2_scene(store)
    with_crs = scene.bands["B04"].header
    a, _, c, _, e, f = with_crs.transform[:6]
    xs = [c + fx * with_crs.width * a for fx in (0.1, 0.12, 0.5, 0.51, 0.9)]
    ys = [f + fy * with_crs.height * e for fy in (0.1, 0.11, 0.5, 0.7, 0.2)]
    lons, lats = transform(f"EPSG:{with_crs.crs_epsg}", "EPSG:4326", xs, ys)
    points = list(zip(lons, lats))
    plan = plan_point_samples([scene], points, BANDS, neighbourhood=3)
    stats = ReadStats()
    samples = sample_points([scene], points, BANDS, neighbourhood=3, stats=stats)
    assert len(samples) == len(points) * len(BANDS) * 9
    assert (plan.requests, plan.bytes) == server_counts(store) == (stats.requests, stats.bytes_fetched)
    assert plan.tiles == stats.tiles_read


def test_requester_pays_price_is_gets_plus_transfer_at_the_given_prices(store, aws_test_credentials):
    options = dict(endpoint_url=store.endpoint_url, requester_pays=True)
    scene = s2_scene(store, "payer", **options)
    aoi = {"field": lonlat_box(scene.bands["B04"].header, 0.2, 0.3, 0.6, 0.55)}
    reader = ReaderOptions(**options)
    prices = Prices(get_per_1000=0.0004, transfer_internet_per_gb=0.09, transfer_inter_region_per_gb=0.02)
    outside = plan_aoi_read([scene], aoi, BANDS, reader_options=reader, prices=prices)
    stats = ReadStats()
    read_aois([scene], aoi, BANDS, reader_options=reader, stats=stats)
    assert (outside.requests, outside.bytes) == server_counts(store)
    assert all(r.requester_pays for r in store.requests_for())
    assert outside.requester_pays_requests == outside.requests
    assert outside.price_usd == pytest.approx(outside.requests * 0.0004 / 1000 + outside.bytes / GIB * 0.09)
    same_region = plan_aoi_read([scene], aoi, BANDS, reader_options=reader, prices=prices, reader_region="us-west-2")
    other_region = plan_aoi_read([scene], aoi, BANDS, reader_options=reader, prices=prices, reader_region="eu-west-1")
    assert same_region.transfer_cost_usd == 0 and same_region.price_usd == pytest.approx(outside.request_cost_usd)
    assert other_region.transfer_cost_usd == pytest.approx(outside.bytes / GIB * 0.02)
    planned, actual = outside.compare(stats)["price_usd"]
    assert actual == pytest.approx(planned)
    assert "requester pays" in outside.summary() and Prices().as_of in outside.summary()
    assert outside.as_dict()["buckets"]["s3://payer"]["requests"] == outside.requests


def test_backfill_plan_equals_the_server_counts_of_its_runs(tmp_path):
    items = make_s2_scenes(tmp_path / "scenes", href_prefix="http://placeholder/scenes")
    with ObjectStoreServer(buckets={"scenes": tmp_path / "scenes"}) as server:
        text = json.dumps({"type": "FeatureCollection", "features": items}).replace("http://placeholder", server.endpoint_url)
        (tmp_path / "items.json").write_text(text)
        source = DataSources.from_items_file(tmp_path / "items.json", S2_BAND_MAP, name="s2-served", short_name="s2")
        r = Rasteret("bf", source, ("2024-01-01", "2024-01-31"), workspace_dir=tmp_path / "ws", progress=False)
        r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0))
        collection = Collection.open(r.root)

        def utm_box(x0, y0, x1, y1):
            return shape(transform_geom(f"EPSG:{EPSG}", "EPSG:4326", shapely.box(x0, y0, x1, y1).__geo_interface__))

        aois = {"a": utm_box(771003, 1436011, 772507, 1437493), "b": utm_box(781500, 1437000, 782900, 1438100)}
        dates = collection.dates()
        plan = plan_backfill(collection, aois, dates, ["B04", "B08", "SCL"])
        server.wait_idle()
        server.reset_stats()
        for day in dates:  # what the ndvi asset does: one run per date x AOI
            scenes = collection.scenes(date_range=(day, day), bands=["B04", "B08", "SCL"])
            for aoi, geom in aois.items():
                aoi_ndvi(scenes, {aoi: geom}, red="B04", nir="B08", mask="SCL")
        server.wait_idle()
        assert plan.requests > 0 and (plan.requests, plan.bytes) == (server.stats.requests, server.stats.bytes_sent)


def test_rasteret_plan_matches_its_get_xarray(store, tmp_path):
    items = make_s2_scenes(tmp_path / "scenes")
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    source = DataSources.from_items_file(path, S2_BAND_MAP, name="s2-local", short_name="s2local")
    r = Rasteret("plan", source, ("2024-01-01", "2024-01-31"), workspace_dir=tmp_path / "ws", progress=False)
    r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0))
    aoi = shape(transform_geom(f"EPSG:{EPSG}", "EPSG:4326", shapely.box(771003, 1436011, 774507, 1439493).__geo_interface__))
    plan = r.plan("get_xarray", {"a": aoi}, ["B04", "B08"], date_range=("2024-01-01", "2024-01-12"))
    r.get_xarray({"a": aoi}, ["B04", "B08"], date_range=("2024-01-01", "2024-01-12"), per_geometry=True)
    for planned, actual in plan.compare(r.last_stats).values():
        assert planned == actual
    assert plan.scenes == 2 and plan.requests > 0
    one_band = r.plan("get_xarray", {"a": aoi}, "B04", date_range=("2024-01-01", "2024-01-12"))  # a code, not letters
    assert one_band.windows * 2 == plan.windows
    points = r.plan("sample_points", [(77.5, 13.0)], ["B04"])
    assert points.read == "sample_points"
    with pytest.raises(ValueError, match="cannot plan"):
        r.plan("ndvi", {"a": aoi}, ["B04"])
