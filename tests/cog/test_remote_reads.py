"""Reads over HTTP and S3 against real local servers: request counts, signing, errors, faults."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rasteret_core.cog import (
    CogError,
    CredentialsError,
    FetchError,
    HttpStatusError,
    ReadStats,
    LocationError,
    ShortReadError,
    TruncatedHeaderError,
    read_header,
    read_window,
    read_windows,
)
from rasteret_core.testing.object_store import FaultRule

S2_KEY = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
DEM_KEY = "rio-tiler-pds/tests/fixtures/copernicus-dem-30m/Copernicus_DSM_COG_10_N00_00_E006_00_DEM/Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif"
FAST_RETRY = dict(retries=3, backoff_base=0.001, backoff_max=0.01)


def intersecting_tiles(header, window: Window) -> int:
    rows = (window.row_off + window.height - 1) // header.tile_height - window.row_off // header.tile_height + 1
    cols = (window.col_off + window.width - 1) // header.tile_width - window.col_off // header.tile_width + 1
    return rows * cols * header.planes


@pytest.mark.parametrize("key", [S2_KEY, DEM_KEY])
def test_gdal_cog_header_costs_one_request(store, key):
    stats = ReadStats()
    header = read_header(store.url("public", key), stats=stats)
    assert stats.requests == stats.header_requests == 1
    assert len(store.requests_for()) == 1
    assert header.width > 0


@pytest.mark.parametrize("window", [Window(10, 20, 30, 40), Window(500, 500, 100, 100), Window(0, 0, 1098, 1098)])
def test_window_reads_fetch_only_intersecting_tiles_and_no_header(store, shared_fixtures_dir, window):
    header = read_header(store.url("public", S2_KEY))
    store.reset_stats()
    stats = ReadStats()
    pixels = read_window(header, window, stats=stats)
    with rasterio.open(shared_fixtures_dir / S2_KEY) as src:
        np.testing.assert_array_equal(pixels, src.read(window=window))
    assert stats.header_requests == 0
    assert 1 <= stats.requests <= intersecting_tiles(header, window)
    assert stats.requests == store.stats.requests
    assert stats.bytes_fetched == store.stats.bytes_sent


def test_stored_header_reads_with_zero_header_requests(store, shared_fixtures_dir):
    header = read_header(store.url("public", S2_KEY))
    restored = type(header).from_dict(header.to_dict())
    store.reset_stats()
    read_window(restored, Window(0, 0, 64, 64))
    assert all(r.range and not r.range.startswith("bytes=0-") for r in store.requests_for())


def test_many_windows_share_tiles_and_coalesce(store, shared_fixtures_dir):
    header = read_header(store.url("public", S2_KEY))
    windows = [Window(0, 0, 100, 100), Window(50, 50, 100, 100), Window(600, 0, 100, 100)]
    store.reset_stats()
    stats = ReadStats()
    results = read_windows([(header, w) for w in windows], stats=stats)
    with rasterio.open(shared_fixtures_dir / S2_KEY) as src:
        for pixels, window in zip(results, windows):
            np.testing.assert_array_equal(pixels, src.read(window=window))
    distinct_tiles = 2  # windows 1 and 2 share tile (0, 0); window 3 is in tile (0, 1)
    assert stats.tiles_read == distinct_tiles
    assert stats.requests <= distinct_tiles


def test_public_s3_bucket_reads_unsigned_through_moto(moto_s3, shared_fixtures_dir, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    url = f"s3://{moto_s3.public_bucket}/{S2_KEY}"
    header = read_header(url, endpoint_url=moto_s3.endpoint_url, region=moto_s3.region)
    pixels = read_window(header, Window(100, 100, 50, 50), endpoint_url=moto_s3.endpoint_url)
    with rasterio.open(shared_fixtures_dir / S2_KEY) as src:
        np.testing.assert_array_equal(pixels, src.read(window=Window(100, 100, 50, 50)))


def test_private_s3_bucket_needs_signing_through_moto(moto_s3, aws_test_credentials):
    url = f"s3://{moto_s3.private_bucket}/{S2_KEY}"
    with pytest.raises(HttpStatusError) as info:
        read_header(url, endpoint_url=moto_s3.endpoint_url, region=moto_s3.region)
    assert info.value.status == 403
    header = read_header(url, endpoint_url=moto_s3.endpoint_url, region=moto_s3.region, sign=True)
    assert header.url == url


def test_requester_pays_requests_are_signed_and_flagged(store, aws_test_credentials):
    url = f"s3://payer/{S2_KEY}"
    with pytest.raises(HttpStatusError, match="requester_pays=True"):
        read_header(url, endpoint_url=store.endpoint_url)
    store.reset_stats()
    header = read_header(url, endpoint_url=store.endpoint_url, requester_pays=True)
    read_window(header, Window(0, 0, 10, 10), endpoint_url=store.endpoint_url, requester_pays=True)
    records = store.requests_for()
    assert len(records) == 2 and all(r.signed and r.requester_pays and r.status == 206 for r in records)


def test_public_reads_send_no_credentials_or_payer_header(store, aws_test_credentials):
    read_header(f"s3://public/{S2_KEY}", endpoint_url=store.endpoint_url)
    (record,) = store.requests_for()
    assert not record.signed and not record.requester_pays


def test_requester_pays_without_credentials_is_a_clear_error(store, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="credentials"):
        read_header(f"s3://payer/{S2_KEY}", endpoint_url=store.endpoint_url, requester_pays=True)


def test_credentials_never_appear_in_errors_or_repr(store, aws_test_credentials):
    key_id, secret = aws_test_credentials
    from rasteret_core.cog import ReaderOptions

    options = ReaderOptions(aws_access_key_id=key_id, aws_secret_access_key=secret, requester_pays=True)
    assert key_id not in repr(options) and secret not in repr(options)
    with pytest.raises(CogError) as info:
        read_header(f"s3://payer/missing.tif", endpoint_url=store.endpoint_url, requester_pays=True)
    text = str(info.value) + repr(info.value)
    assert key_id not in text and secret not in text and "Signature" not in text


def test_presigned_query_is_redacted_in_errors(store):
    url = store.url("public", "nope.tif") + "?X-Amz-Signature=abcdef123456&X-Amz-Credential=AKIAXXX"
    with pytest.raises(HttpStatusError) as info:
        read_header(url)
    assert "abcdef123456" not in str(info.value) and "AKIAXXX" not in str(info.value)


def test_missing_object_is_404_naming_the_url(store):
    url = store.url("public", "missing/file.tif")
    with pytest.raises(HttpStatusError) as info:
        read_header(url)
    assert info.value.status == 404 and url in str(info.value)


def test_throttling_is_retried_honouring_retry_after(store, shared_fixtures_dir):
    store.add_fault(FaultRule("status", status=503, retry_after=0.01, times=2))
    stats = ReadStats()
    header = read_header(store.url("public", S2_KEY), stats=stats, **FAST_RETRY)
    assert stats.retries == 2 and header.width == 1098


@pytest.mark.parametrize("fault", [
    FaultRule("status", status=500, times=2),
    FaultRule("reset", after_bytes=100, times=2),
    FaultRule("truncate", times=2),
    FaultRule("wrong_range", times=1),
])
def test_transient_faults_are_retried_and_pixels_stay_exact(store, shared_fixtures_dir, fault):
    header = read_header(store.url("public", S2_KEY))
    store.add_fault(fault)
    stats = ReadStats()
    window = Window(0, 0, 300, 300)
    pixels = read_window(header, window, stats=stats, **FAST_RETRY)
    with rasterio.open(shared_fixtures_dir / S2_KEY) as src:
        np.testing.assert_array_equal(pixels, src.read(window=window))
    assert stats.retries >= 1


def test_persistent_failure_stops_after_the_retry_budget(store):
    store.add_fault(FaultRule("status", status=503, times=100))
    stats = ReadStats()
    with pytest.raises(HttpStatusError) as info:
        read_header(store.url("public", S2_KEY), stats=stats, **FAST_RETRY)
    assert info.value.status == 503 and "SlowDown" in str(info.value)
    assert stats.requests == FAST_RETRY["retries"] + 1


def test_stalled_server_times_out_with_a_fetch_error(store):
    store.add_fault(FaultRule("stall", seconds=2.0, times=5))
    with pytest.raises(FetchError, match="timed out"):
        read_header(store.url("public", S2_KEY), timeout=0.2, retries=1, backoff_base=0.001)


def test_wrong_ranges_every_time_end_in_a_short_read_error(store):
    header = read_header(store.url("public", S2_KEY))
    store.add_fault(FaultRule("wrong_range", times=100))
    with pytest.raises(ShortReadError):
        read_window(header, Window(0, 0, 10, 10), **FAST_RETRY)


def test_empty_file_is_reported_not_parsed(tmp_path):
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(TruncatedHeaderError, match="empty"):
        read_header(path)


def test_truncated_cog_is_detected_at_header_time(tmp_path, shared_fixtures_dir):
    data = (shared_fixtures_dir / S2_KEY).read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedHeaderError, match="past the end"):
        read_header(path)


def test_failed_windows_can_be_returned_instead_of_raised(store, shared_fixtures_dir, tmp_path):
    good = read_header(store.url("public", S2_KEY))
    data = (shared_fixtures_dir / S2_KEY).read_bytes()
    path = tmp_path / "copy.tif"
    path.write_bytes(data)
    doomed = read_header(path)
    path.unlink()
    results = read_windows([(good, Window(0, 0, 10, 10)), (doomed, Window(0, 0, 10, 10))], return_exceptions=True)
    assert isinstance(results[0], np.ndarray)
    assert isinstance(results[1], HttpStatusError) and "copy.tif" in str(results[1])


def test_unsigned_reads_follow_http_redirects(store):
    target = store.url("public", S2_KEY)
    store.add_fault(FaultRule("redirect", location=target, times=1))
    header = read_header(store.url("public", "moved.tif"))
    assert header.width == 1098 and [r.status for r in store.requests_for()] == [302, 206]


def test_redirects_to_other_schemes_are_refused(store):
    store.add_fault(FaultRule("redirect", location="file:///etc/passwd", times=1))
    with pytest.raises(FetchError, match="redirect refused"):
        read_header(store.url("public", S2_KEY))


def test_signed_requests_never_follow_redirects(store, aws_test_credentials):
    store.add_fault(FaultRule("redirect", location="http://127.0.0.1:9/elsewhere", times=1))
    with pytest.raises(LocationError, match="never redirected"):
        read_header(f"s3://payer/{S2_KEY}", endpoint_url=store.endpoint_url, requester_pays=True)
    assert [r.status for r in store.requests_for()] == [302]  # nothing sent after the redirect


def test_local_files_outside_the_allowed_folders_are_refused(shared_fixtures_dir, tmp_path):
    path = shared_fixtures_dir / S2_KEY
    with pytest.raises(FetchError, match="outside the allowed folders"):
        read_header(path, local_roots=(str(tmp_path),))
    assert read_header(path, local_roots=(str(shared_fixtures_dir),)).width == 1098


def test_the_in_flight_byte_budget_bounds_concurrent_fetches(store, shared_fixtures_dir):
    header = read_header(store.url("public", S2_KEY))
    store.wait_idle()
    store.reset_stats()
    window = Window(0, 0, header.width, header.height)
    # a budget below one tile: tiles are fetched one at a time, and still all of them
    pixels = read_window(header, window, max_inflight_bytes=1, max_coalesced_bytes=1, max_concurrency=16)
    store.wait_idle()
    assert store.stats.peak_connections == 1
    assert store.stats.requests == intersecting_tiles(header, window)
    with rasterio.open(shared_fixtures_dir / S2_KEY) as src:
        np.testing.assert_array_equal(pixels, src.read())
