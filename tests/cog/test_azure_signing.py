"""Planetary Computer reads: unsigned hrefs stored, SAS tokens added at read time, refreshed
before they expire and when the blob service says they have, Azure range rules honoured.

The server is a local Azure-Blob-style store that checks every SAS query and can expire the
tokens it issued in the middle of a read; its token endpoint answers as Planetary Computer's.
The items are the real Planetary Computer items; their blobs are the real Sentinel-2 fixture
files placed at the items' paths.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import shape

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.cog.azure import BLOB_API_VERSION, planetary_computer_signer, PlanetaryComputerSigner
from rasteret_core.cog.reader import run_sync
from rasteret_core.collection.harvest import harvest, reader_options_for
from rasteret_core.collection.schema import scenes_to_table
from rasteret_core.plan import plan_aoi_read
from rasteret_core.read import read_aois
from rasteret_core.stac.sources import DataSources
from rasteret_core.testing.azure_blob import AzureBlobServer
from tests.helpers.servers import FIXTURES

PC_S2 = FIXTURES / "stac-geoparquet/tests/data/sentinel-2-l2a-pc.json"
S2_DIR = FIXTURES / "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B04", "B08", "SCL"]


@pytest.fixture(scope="module")
def pc_item():
    if not PC_S2.is_file():
        pytest.skip("the shared fixtures are not present")
    return json.loads(PC_S2.read_text())[0]


@pytest.fixture(scope="module")
def blob_server(pc_item, tmp_path_factory):
    """The item's B04/B08/SCL blobs (the fixture scene's files) in their account/container."""
    root = tmp_path_factory.mktemp("blobs")
    accounts = set()
    for band in BANDS:
        parts = urlsplit(pc_item["assets"][band]["href"])
        account = parts.hostname.split(".")[0]
        container, _, blob = parts.path.lstrip("/").partition("/")
        accounts.add((account, container))
        target = root / blob
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(S2_DIR / f"{band}.tif", target)
    with AzureBlobServer({key: root for key in accounts}) as server:
        yield server


@pytest.fixture
def blobs(blob_server):
    blob_server.reset_stats()
    yield blob_server


def options(server, signer, **kw):
    return ReaderOptions(signer=signer, azure_endpoint_url=server.endpoint_url, **kw)


def lonlat_box(header, fx0, fy0, fx1, fy1):
    a, _, c, _, e, f = header.transform[:6]
    utm = shapely.box(c + fx0 * header.width * a, f + fy1 * header.height * e,
                      c + fx1 * header.width * a, f + fy0 * header.height * e)
    return shape(transform_geom(f"EPSG:{header.crs_epsg}", "EPSG:4326", utm.__geo_interface__))


def harvested(pc_item, server, signer):
    result = harvest([pc_item], DataSources.PC_SENTINEL2, bands=BANDS, reader_options=options(server, signer),
                     progress=False)
    assert not result.failures, result.failures
    return result


def test_harvest_stores_unsigned_hrefs_and_the_read_continues_after_the_token_expires(pc_item, blobs):
    signer = PlanetaryComputerSigner(token_url=blobs.token_url)
    result = harvested(pc_item, blobs, signer)
    scene = result.scenes[0]
    for band in BANDS:
        asset = scene.bands[band]
        assert asset.href == pc_item["assets"][band]["href"] and "?" not in asset.href
        assert asset.header is not None and "?" not in asset.header.url
    # radiometry decided at harvest: PC items carry no raster:bands, the baseline (05.10) decides
    assert (scene.bands["B04"].scale, scene.bands["B04"].offset) == pytest.approx((1e-4, -0.1))
    stored = json.dumps(scenes_to_table(result.scenes, BANDS).to_pylist(), default=str)
    assert "sig=" not in stored and "se=" not in stored  # no token is ever stored
    assert blobs.stats.token_requests == 1  # one token for the container, shared by the three headers

    blobs.reset_stats()
    blobs.expire_after(2)  # the token dies two requests into the read
    h = scene.bands["B04"].header
    aois = {"field": lonlat_box(h, 0.2, 0.3, 0.6, 0.55), "corner": lonlat_box(h, 0.7, 0.7, 0.99, 0.99)}
    stats = ReadStats()
    read = read_aois([scene], aois, BANDS, reader_options=options(blobs, signer), stats=stats)
    assert not read.failures, read.failures
    for raster in read.rasters:
        with rasterio.open(S2_DIR / f"{raster.band}.tif") as src:
            geom = transform_geom("EPSG:4326", src.crs, aois[raster.geometry_id].__geo_interface__)
            expected, _ = rasterio.mask.mask(src, [geom], crop=True)
        np.testing.assert_array_equal(raster.data, expected[0])
    assert blobs.stats.expired_answers >= 1 and stats.retries == blobs.stats.expired_answers
    assert blobs.stats.token_requests == 1  # one refresh, however many requests saw the expiry
    assert all(r.api_version == BLOB_API_VERSION and r.range.startswith("bytes=") and r.status in (206, 403)
               for r in blobs.stats.log)
    assert stats.header_requests == 0


def test_a_token_close_to_its_expiry_is_refreshed_before_a_request_fails(pc_item, blobs):
    shift = [0.0]
    signer = PlanetaryComputerSigner(token_url=blobs.token_url, refresh_margin=300, clock=lambda: time.time() + shift[0])
    scene = harvested(pc_item, blobs, signer).scenes[0]
    aoi = {"a": lonlat_box(scene.bands["B04"].header, 0.1, 0.1, 0.2, 0.2)}
    read_aois([scene], aoi, ["B04"], reader_options=options(blobs, signer))
    assert blobs.stats.token_requests == 1
    shift[0] = blobs.token_lifetime - 200  # later in a long read: within the margin of msft:expiry
    read_aois([scene], aoi, ["B04"], reader_options=options(blobs, signer))
    assert blobs.stats.token_requests == 2 and blobs.stats.expired_answers == 0


def test_plan_equals_the_blob_servers_counts(pc_item, blobs):
    signer = PlanetaryComputerSigner(token_url=blobs.token_url)
    scene = harvested(pc_item, blobs, signer).scenes[0]
    blobs.reset_stats()
    aoi = {"a": lonlat_box(scene.bands["B04"].header, 0.3, 0.3, 0.7, 0.6)}
    opts = options(blobs, signer)
    plan = plan_aoi_read([scene], aoi, BANDS, reader_options=opts)
    read_aois([scene], aoi, BANDS, reader_options=opts)
    assert (plan.requests, plan.bytes) == (blobs.stats.requests, blobs.stats.bytes_sent)
    assert plan.price_usd == 0 and list(plan.buckets) == ["127.0.0.1:%d" % blobs.port]


def test_a_failing_token_endpoint_is_reported_per_asset(pc_item, blobs):
    signer = PlanetaryComputerSigner(token_url=blobs.endpoint_url + "/no/such/endpoint", attempts=1)
    result = harvest([pc_item], DataSources.PC_SENTINEL2, bands=["B04"], reader_options=options(blobs, signer),
                     progress=False)
    (failure,) = result.failures
    assert "token endpoint answered HTTP 404" in failure.error and "/no/such/endpoint" in failure.error


def test_the_signer_never_shows_its_token_nor_ships_it_to_another_process(blobs):
    signer = PlanetaryComputerSigner(token_url=blobs.token_url)
    account, container = next(iter(blobs.containers))
    signed = run_sync(lambda: signer(f"https://{account}.blob.core.windows.net/{container}/x.tif"))
    token = signer._tokens[(account, container)]
    assert token.token in signed and token.token not in repr(token) and "sig" not in repr(signer)
    blob = pickle.dumps(signer)  # a dask worker gets the endpoint, not the token
    assert token.token.encode() not in blob and pickle.loads(blob).token_url == blobs.token_url


def test_planetary_computer_sources_get_the_shared_signer_and_others_none():
    assert reader_options_for(DataSources.PC_SENTINEL2, None).signer is planetary_computer_signer()
    assert reader_options_for(DataSources.PC_LANDSAT, {}).signer is planetary_computer_signer()
    assert reader_options_for(DataSources.SENTINEL2_C1, None).signer is None
    own = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/token")
    assert reader_options_for(DataSources.PC_SENTINEL2, ReaderOptions(signer=own)).signer is own
