"""The local S3-compatible object server follows S3's range and requester-pays rules."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from rasteret_core.testing.object_store import FaultRule, ObjectStoreServer


@pytest.fixture
def server(tmp_path):
    (tmp_path / "bkt").mkdir()
    (tmp_path / "bkt" / "obj.bin").write_bytes(bytes(range(256)) * 4)
    with ObjectStoreServer(tmp_path) as srv:
        yield srv


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_single_range_gets_206_with_content_range(server):
    status, headers, body = get(server.url("bkt", "obj.bin"), {"Range": "bytes=10-19"})
    assert status == 206 and headers["Content-Range"] == "bytes 10-19/1024" and body == bytes(range(10, 20))


def test_suffix_and_open_ranges(server):
    assert get(server.url("bkt", "obj.bin"), {"Range": "bytes=-4"})[2] == bytes(range(252, 256))
    assert len(get(server.url("bkt", "obj.bin"), {"Range": "bytes=1000-"})[2]) == 24


def test_range_past_the_end_is_416(server):
    status, headers, _ = get(server.url("bkt", "obj.bin"), {"Range": "bytes=5000-6000"})
    assert status == 416 and headers["Content-Range"] == "bytes */1024"


def test_multi_range_answers_the_whole_object(server):
    status, _, body = get(server.url("bkt", "obj.bin"), {"Range": "bytes=0-1,5-6"})
    assert status == 200 and len(body) == 1024


def test_missing_key_is_404_and_traversal_refused(server):
    assert get(server.url("bkt", "nope.bin"))[0] == 404
    assert get(server.endpoint_url + "/bkt/%2E%2E/%2E%2E/etc/passwd")[0] in (400, 403, 404)


def test_requester_pays_bucket_refuses_requests_without_the_header(tmp_path):
    (tmp_path / "pay").mkdir()
    (tmp_path / "pay" / "o").write_bytes(b"abc")
    with ObjectStoreServer(tmp_path, requester_pays={"pay"}) as srv:
        assert get(srv.url("pay", "o"))[0] == 403
        assert get(srv.url("pay", "o"), {"x-amz-request-payer": "requester"})[2] == b"abc"
        assert [r.status for r in srv.requests_for()] == [403, 200]


def test_counters_and_one_shot_faults(server):
    server.add_fault(FaultRule("status", status=503, retry_after=1, times=1))
    status, headers, body = get(server.url("bkt", "obj.bin"), {"Range": "bytes=0-9"})
    assert status == 503 and headers["Retry-After"] == "1" and b"SlowDown" in body
    assert get(server.url("bkt", "obj.bin"), {"Range": "bytes=0-9"})[0] == 206
    assert server.stats.requests == 2 and server.stats.faults_fired == 1 and server.stats.bytes_sent == 10


def test_latency_delays_every_answer(tmp_path):
    import time

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "o").write_bytes(b"x")
    with ObjectStoreServer(tmp_path, latency=0.05) as srv:
        start = time.perf_counter()
        get(srv.url("b", "o"))
        assert time.perf_counter() - start >= 0.05
