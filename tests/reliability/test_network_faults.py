"""Network faults injected by the local object store: reads either return exact pixels after
bounded retries or fail with the error naming the URL and the reason; a harvest with failing
assets records them and completes the others."""

from __future__ import annotations

import random

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rasteret_core.cog import (
    CogError, FetchError, HttpStatusError, read_header, read_windows, ReadStats, ShortReadError,
)
from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.testing.object_store import FaultRule

FILES = [
    "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif",
    "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B08.tif",
    "rio-tiler-pds/tests/fixtures/copernicus-dem-30m/Copernicus_DSM_COG_10_N00_00_E006_00_DEM/Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif",
]
RETRIES = 6
FAST = dict(retries=RETRIES, backoff_base=0.001, backoff_max=0.01, retry_after_max=0.05)


def _random_fault(rng: random.Random, path_glob: str, times: int) -> FaultRule:
    kind = rng.choice(["slowdown", "500", "reset", "truncate", "wrong_range"])
    if kind == "slowdown":  # S3's throttling answer, with a Retry-After the reader honours
        return FaultRule("status", path_glob, times=times, status=503, retry_after=0.01)
    if kind == "500":
        return FaultRule("status", path_glob, times=times, status=500)
    if kind == "reset":
        return FaultRule("reset", path_glob, times=times, after_bytes=rng.randint(0, 2048))
    if kind == "truncate":
        return FaultRule("truncate", path_glob, times=times)
    return FaultRule("wrong_range", path_glob, times=times, shift=rng.randint(1, 64))


def _windows(rng: random.Random, header, count: int) -> list[Window]:
    out = []
    for _ in range(count):
        w, h = rng.randint(1, min(400, header.width)), rng.randint(1, min(400, header.height))
        out.append(Window(rng.randint(0, header.width - w), rng.randint(0, header.height - h), w, h))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_fault_campaign_reads_stay_exact_within_the_retry_budget(store, shared_fixtures_dir, seed, record_property):
    """Random bursts of SlowDown, 500, resets, truncations and wrong ranges, never more per
    file than the retry budget: every read succeeds with rasterio's pixels."""
    rng = random.Random(seed)
    headers = {key: read_header(store.url("public", key)) for key in FILES}
    injected = 0
    for key in FILES:
        budget = RETRIES
        while budget:
            times = rng.randint(1, budget)
            store.add_fault(_random_fault(rng, f"*{key.rsplit('/', 2)[-2]}/{key.rsplit('/', 1)[-1]}", times))
            injected += times
            budget -= times
    requests = [(headers[key], w) for key in FILES for w in _windows(rng, headers[key], 4)]
    stats = ReadStats()
    arrays = read_windows(requests, stats=stats, **FAST)
    store.wait_idle()
    for (header, window), got in zip(requests, arrays):
        key = next(k for k in FILES if header is headers[k])
        with rasterio.open(shared_fixtures_dir / key) as src:
            np.testing.assert_array_equal(got, src.read(window=window))
    fired = store.stats.faults_fired
    # a fault costs at most one retry (a reset after the whole body arrived costs none)
    assert 0 < stats.retries <= fired <= injected
    record_property("reliability.faults_injected", fired)
    record_property("reliability.faults_survived", fired)


@pytest.mark.parametrize("fault, error, reason", [
    (FaultRule("status", status=503, retry_after=0.01, times=1000), HttpStatusError, "SlowDown"),
    (FaultRule("status", status=500, times=1000), HttpStatusError, "HTTP 500"),
    (FaultRule("reset", after_bytes=10, times=1000), FetchError, "connection"),
    (FaultRule("truncate", times=1000), FetchError, "mid-response"),
    (FaultRule("wrong_range", times=1000), ShortReadError, "Content-Range"),
    (FaultRule("status", status=403, times=1000), HttpStatusError, "HTTP 403"),
])
def test_persistent_faults_fail_after_a_bounded_budget_naming_url_and_reason(store, fault, error, reason, record_property):
    url = store.url("public", FILES[0])
    header = read_header(url)
    store.add_fault(fault)
    stats = ReadStats()
    with pytest.raises(error) as info:
        read_windows([(header, Window(0, 0, 64, 64))], stats=stats, **FAST)
    store.wait_idle()
    message = str(info.value)
    assert url in message and reason in message
    retryable = fault.status != 403
    assert stats.requests == (RETRIES + 1 if retryable else 1)  # bounded, no infinite loop
    assert store.stats.faults_fired == stats.requests
    record_property("reliability.faults_injected", store.stats.faults_fired)
    record_property("reliability.persistent_faults_reported", 1)


def test_harvest_under_faults_records_failing_assets_and_completes_the_rest(
    scene_server, demo_scenes, record_property,
):
    """Transient faults on every scene, a permanent 503 on one asset and a 404 on another."""
    items = [dict(item) for item in demo_scenes.items]
    first, second = items[0]["id"], items[1]["id"]
    items[1] = {**items[1], "assets": {**items[1]["assets"], "nir": {
        **items[1]["assets"]["nir"], "href": items[1]["assets"]["nir"]["href"].replace("B08.tif", "B08-missing.tif")}}}
    source = DataSource.from_items_file("unused.json", dict(DataSources.SENTINEL2.band_map), name="faults")
    options = dict(endpoint_url=scene_server.endpoint_url, **FAST)
    clean = harvest(demo_scenes.items, source, bands=["B04", "B08", "SCL"], reader_options=options, progress=False)
    scene_server.wait_idle()
    scene_server.reset_stats()
    scene_server.add_fault(FaultRule("status", f"*/{first}/SCL.tif", times=1000, status=503, retry_after=0.01))
    for item in demo_scenes.items[1:]:
        scene_server.add_fault(FaultRule("reset", f"*/{item['id']}/B04.tif", times=2, after_bytes=100))
        scene_server.add_fault(FaultRule("status", f"*/{item['id']}/SCL.tif", times=3, status=500))
    try:
        result = harvest(items, source, bands=["B04", "B08", "SCL"], reader_options=options, progress=False)
        scene_server.wait_idle()
    finally:
        scene_server.clear_faults()
    failed = {(f.item_id, f.band): f.error for f in result.failures}
    assert set(failed) == {(first, "SCL"), (second, "B08")}
    assert "SlowDown" in failed[(first, "SCL")] and "SCL.tif" in failed[(first, "SCL")]
    assert "404" in failed[(second, "B08")] and "B08-missing.tif" in failed[(second, "B08")]
    good = {(s.id, b): a.header for s in clean.scenes for b, a in s.bands.items()}
    for scene in result.scenes:
        for band, asset in scene.bands.items():
            if (scene.id, band) not in failed:
                assert asset.error is None and asset.header == good[(scene.id, band)]
    fired = scene_server.stats.faults_fired
    record_property("reliability.faults_injected", fired)
    record_property("reliability.faults_survived", fired - (RETRIES + 1))


def test_only_project_errors_escape_a_fault_storm(store, record_property):
    """Every kind of fault at once on every request: failures are CogErrors, never raw
    aiohttp/asyncio exceptions, and each names its URL."""
    headers = [read_header(store.url("public", key)) for key in FILES]
    for kind in ("reset", "truncate", "wrong_range"):
        store.add_fault(FaultRule(kind, times=1000, after_bytes=5))
    results = read_windows([(h, Window(0, 0, 32, 32)) for h in headers], return_exceptions=True,
                           retries=2, backoff_base=0.001, backoff_max=0.01)
    store.wait_idle()
    assert all(isinstance(r, CogError) and r.url in str(r) for r in results)
    record_property("reliability.faults_injected", store.stats.faults_fired)
