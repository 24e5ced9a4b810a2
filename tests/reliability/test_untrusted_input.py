"""Untrusted input against real local servers: STAC hrefs, redirects and hostile responses
can neither send credentials to another host, reach an internal host, nor exhaust memory.

An HTTPS server with a test certificate stands in for the attacker's host. Reads that could
reach it run in a child process that trusts that certificate (``SSL_CERT_FILE``), so a
request would really get through; a control read in the same child shows it does. Memory
of each hostile case is measured in a child process too (resident growth and tracemalloc).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import imagecodecs
import numpy as np
import pytest
import rasterio
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from rasteret_core.cog import LocationError, read_header, ReaderOptions, ReadStats
from rasteret_core.cog.urls import resolve, valid_bucket_name
from rasteret_core.collection import build_collection, Collection
from rasteret_core.collection.harvest import harvest, source_reader_options
from rasteret_core.read.aoi import read_aois
from rasteret_core.redact import is_redacted, redact_url
from rasteret_core.stac.local_items import load_items
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.testing.object_store import FaultRule, ObjectStoreServer
from rasteret_pipelines.defs.resources import CogReader
from tests.helpers.attacker import RecordingServer, write_test_certificate
from tests.helpers.children import with_own_peak_rss
from tests.reliability.test_hostile_files import first_ifd_entries, S2_B04, set_first_element, with_first_tile

REPO = Path(__file__).resolve().parents[2]
MIB = 2**20
HOSTILE_MEMORY_BOUND = 256 * MIB
KEYS = dict(aws_access_key_id="AKIARASTERETATTACKTEST", aws_secret_access_key="attack/test/secret/0123456789abcdef")


def run_child(params: dict, *, env: dict[str, str] | None = None, timeout: float = 240) -> list[dict]:
    """Run ``hostile_read`` in a child process; its per-read outcomes."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HTTP_PROXY", "HTTPS_PROXY"))}
    child_env.update(env or {}, PYTHONPATH=str(REPO))
    done = subprocess.run(with_own_peak_rss([sys.executable, "-m", "tests.reliability._children.hostile_read",
                                             json.dumps(params)]),
                          cwd=REPO, env=child_env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return write_test_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The object store with a public and a requester-pays bucket over one folder."""
    folder = tmp_path_factory.mktemp("untrusted")
    (folder / "B04.tif").write_bytes(S2_B04.read_bytes())
    with ObjectStoreServer(buckets={"public-bucket": folder, "payer-bucket": folder},
                           requester_pays={"payer-bucket"}) as server:
        server.folder = folder
        yield server


# --- credentials ------------------------------------------------------------------------------
def test_hrefs_and_redirects_never_carry_credentials_to_another_host(store, certificate, record_property):
    with RecordingServer(tls=certificate) as attacker:
        host = f"127.0.0.1:{attacker.port}"
        signed = dict(requester_pays=True, retries=0, **KEYS)
        hostile_hrefs = [
            f"s3://{host}#/usgs-landsat/collection02/x.tif",  # the reported attack
            f"s3://{host}?/usgs-landsat/x.tif",
            f"s3://{host}/usgs-landsat/x.tif",
            f"s3://usgs-landsat@{host}/x.tif",
            f"s3://{host}\\@usgs-landsat/x.tif",
            "s3://127.0.0.1/x.tif",
            "s3://Usgs_Landsat/x.tif",
        ]
        store.add_fault(FaultRule("redirect", "/payer-bucket/*", times=100, location=f"{attacker.origin}/signed"))
        store.add_fault(FaultRule("redirect", "/public-bucket/*", times=100, location=f"{attacker.origin}/unsigned"))
        reads = [{"op": "header", "url": href, "options": signed} for href in hostile_hrefs]
        reads += [
            {"op": "header", "url": "s3://payer-bucket/B04.tif", "options": {**signed, "endpoint_url": store.endpoint_url}},
            {"op": "header", "url": store.url("public-bucket", "B04.tif"), "options": {"retries": 0}},
            {"op": "header", "url": f"{attacker.origin}/control.tif", "options": signed},  # control: reachable
        ]
        try:
            results = run_child({"reads": reads}, env={"SSL_CERT_FILE": str(certificate[0])})
        finally:
            store.clear_faults()
        received = list(attacker.received)
    *hostile, signed_redirect, unsigned_redirect, control = results
    for href, outcome in zip(hostile_hrefs, hostile):
        assert outcome["error_type"] == "LocationError" and "S3 bucket name" in outcome["error"], (href, outcome)
        assert outcome["requests"] == 0
    assert signed_redirect["error_type"] == "LocationError" and "never redirected" in signed_redirect["error"]
    assert unsigned_redirect["error_type"] == "LocationError" and "another host" in unsigned_redirect["error"]
    # the attacker's host was reachable and trusted: only the control request arrived, unsigned
    assert [r.path for r in received] == ["/control.tif"]
    assert control["error_type"] == "NotATiffError" or control["error_type"] == "HttpStatusError"
    assert not [k for r in received for k in r.headers if k.lower() in ("authorization", "x-amz-security-token")]
    assert [r.status for r in store.requests_for("/payer-bucket/*")] == [302]  # signed once, never re-sent
    record_property("reliability.attacks_refused", len(hostile_hrefs) + 2)


def test_a_redirect_to_an_internal_host_is_not_followed(store, record_property):
    with RecordingServer(body=b"internal service") as internal:
        store.add_fault(FaultRule("redirect", "/public-bucket/*", times=1, location=f"{internal.origin}/admin"))
        with pytest.raises(LocationError, match="another host"):
            read_header(store.url("public-bucket", "B04.tif"), retries=0)
        assert internal.received == []
    # a redirect within the same origin is followed
    store.add_fault(FaultRule("redirect", "/public-bucket/*", times=1, location="/public-bucket/B04.tif?moved=1"))
    stats = ReadStats()
    assert read_header(store.url("public-bucket", "B04.tif"), stats=stats).width == 1098
    assert stats.redirects == 1
    record_property("reliability.attacks_refused", 1)


@settings(max_examples=300, deadline=None)
@given(bucket=st.text(min_size=0, max_size=70), key=st.text(min_size=1, max_size=40))
@example(bucket="000/", key="0")  # the bucket is what precedes the first "/": "000", key "/0"
@example(bucket="000", key="\x00")  # refused: a NUL is never part of a URL or path
def test_an_s3_url_is_either_refused_or_addressed_to_its_own_bucket(bucket, key):
    """Property: whatever the bucket part, the URL built goes to that bucket's AWS origin and
    carries the key in its path, or the href is refused."""
    real_bucket, _, real_key = f"{bucket}/{key}".partition("/")
    try:
        loc = resolve(f"s3://{bucket}/{key}", region="us-west-2")
    except LocationError:  # an invalid bucket, or a NUL anywhere (no URL or path holds one)
        assert not valid_bucket_name(real_bucket) or "/" in bucket or "\x00" in key
        return
    assert valid_bucket_name(real_bucket)
    parts = urlsplit(loc.http_url)
    dotted = "." in real_bucket
    expected_host = "s3.us-west-2.amazonaws.com" if dotted else f"{real_bucket}.s3.us-west-2.amazonaws.com"
    assert parts.scheme == "https" and parts.hostname == expected_host and parts.port is None
    assert not parts.query and not parts.fragment and not parts.username
    prefix = f"/{real_bucket}/" if dotted else "/"
    assert unquote(parts.path) == prefix + real_key


# --- local files and internal hosts ----------------------------------------------------------
S2_ITEM = S2_B04.parent / "S2A_29RKH_20200219_0_L2A.json"


def _real_item(hrefs: dict[str, str]) -> dict:
    """The real Earth Search item of the fixture scene, with some asset hrefs replaced."""
    item = json.loads(S2_ITEM.read_text())
    for key, href in hrefs.items():
        item["assets"][key]["href"] = href
    return item


def test_items_from_a_remote_stac_api_never_open_local_files(store, tmp_path, record_property):
    secret = tmp_path / "secret.tif"
    secret.write_bytes(S2_B04.read_bytes())  # exists and is a readable COG: refusing must not depend on that
    item = _real_item({"red": f"file://{secret}", "nir": "../../../secret.tif",
                       "scl": "s3://public-bucket/B04.tif"})
    options = source_reader_options(DataSources.SENTINEL2, {"endpoint_url": store.endpoint_url, "retries": 0})
    result = harvest([item], DataSources.SENTINEL2, bands=["B04", "B08", "SCL"], progress=False, reader_options=options)
    errors = {f.band: f.error for f in result.failures}
    assert set(errors) == {"B04", "B08"}
    for error in errors.values():
        assert error.startswith("LocationError") and "local files may not be read here" in error
        assert "bytes" not in error and "no such file" not in error  # neither existence nor size leaks
    assert result.scenes[0].bands["SCL"].header is not None  # the item's other assets are read
    record_property("reliability.attacks_refused", 2)


def test_a_local_items_file_reads_only_its_own_folder_or_allowed_roots(store, tmp_path, record_property):
    folder, elsewhere = tmp_path / "items", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "B04.tif").write_bytes(S2_B04.read_bytes())
    (elsewhere / "B08.tif").write_bytes(S2_B04.read_bytes())
    item = _real_item({"red": "B04.tif", "nir": "../elsewhere/B08.tif", "scl": "/etc/passwd"})
    (folder / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    source = DataSource.from_items_file(folder / "items.json", dict(DataSources.SENTINEL2.band_map))
    (item,) = load_items(folder / "items.json")  # relative hrefs resolved against the file's folder
    result = harvest([item], source, bands=["B04", "B08", "SCL"], progress=False,
                     reader_options=source_reader_options(source, None))
    errors = {f.band: f.error for f in result.failures}
    assert set(errors) == {"B08", "SCL"} and all("outside the allowed folders" in e for e in errors.values())
    # the caller may allow another folder, also through the Dagster resource
    options = CogReader(local_roots=[str(elsewhere)]).options(source)
    result = harvest([item], source, bands=["B04", "B08", "SCL"], progress=False, reader_options=options)
    assert [f.band for f in result.failures] == ["SCL"]
    record_property("reliability.attacks_refused", 3)


# --- presigned and tokenised hrefs ---------------------------------------------------------
SIGNATURE, TOKEN = "0badc0ffee5ecret5ignature", "FwoGZXIvYXdzSESSIONTOKENleak"


def test_presigned_hrefs_are_stored_without_secrets_and_signed_again_at_read_time(store, tmp_path, record_property):
    query = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPRESIGNED%2F20240105%2Fus-west-2%2Fs3"
             f"&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={TOKEN}&X-Amz-Expires=3600")
    item = _real_item({"red": store.url("public-bucket", f"B04.tif?{query}"),
                       "nir": f"https://example.blob.core.windows.net/c/B08.tif?sv=2021&se=2030&sig={SIGNATURE}",
                       "scl": f"https://storage.googleapis.com/b/SCL.tif?X-Goog-Signature={SIGNATURE}"})
    items_file = tmp_path / "items" / "items.json"
    items_file.parent.mkdir()
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    source = DataSource.from_items_file(items_file, dict(DataSources.SENTINEL2.band_map))
    root = tmp_path / "collection"
    report = build_collection(source, root=root, date_range=("2020-02-19", "2020-02-19"), bands=["B04"],
                              progress=False)
    assert report.scenes == 1 and not report.failures  # the presigned href was read as given
    stored = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert SIGNATURE.encode() not in stored and TOKEN.encode() not in stored and b"AKIAPRESIGNED" not in stored
    scenes = Collection.open(str(root)).scenes()
    geometry = shapely.box(*item["bbox"]).centroid.buffer(0.01)
    # without a signer: a clear error that the stored URL needs re-signing, nothing requested
    store.reset_stats()
    failed = read_aois(scenes, {"aoi": geometry}, ["B04"])
    assert failed.failures and "needs re-signing" in failed.failures[0].error and not store.requests_for()
    # with one: signed afresh at read time, from the secret-free URL
    seen = []

    def signer(url: str) -> str:
        seen.append(url)
        return f"{url}&fresh-token=1" if "?" in url else f"{url}?fresh-token=1"

    read = read_aois(scenes, {"aoi": geometry}, ["B04"], reader_options=ReaderOptions(signer=signer))
    assert not read.failures and read.rasters[0].data.size
    assert seen and all(SIGNATURE not in u and "REDACTED" not in u for u in seen)
    record_property("reliability.attacks_refused", 1)


def test_signature_parameters_of_every_kind_are_redacted():
    urls_ = [f"https://b.s3.amazonaws.com/k?X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={TOKEN}",
             f"https://storage.googleapis.com/b/k?X-Goog-Signature={SIGNATURE}&X-Goog-Credential=sa",
             f"https://a.blob.core.windows.net/c/k?sv=2021&se=2030-01-01&sp=r&sig={SIGNATURE}",
             f"https://user:{SIGNATURE}@host.test/k"]
    for url in urls_:
        assert SIGNATURE not in redact_url(url) and TOKEN not in redact_url(url) and is_redacted(redact_url(url)) \
            or "@" in url
    assert "2030" not in redact_url(urls_[2])  # the SAS expiry too


# --- memory ---------------------------------------------------------------------------------
def _lerc_deflate_file(folder: Path) -> Path:
    path = folder / "lerc.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=1, dtype="float32", tiled=True,
                       blockxsize=64, blockysize=64, compress="LERC_DEFLATE", crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(np.arange(128 * 128, dtype="float32").reshape(1, 128, 128))
    return path


def _webp_file(folder: Path) -> Path:
    path = folder / "webp.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=3, dtype="uint8", tiled=True,
                       blockxsize=64, blockysize=64, compress="WEBP", webp_lossless=True, crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 128, 128), dtype="uint8"))
    return path


def _deflate_bomb(size: int) -> bytes:
    """``size`` zero bytes, DEFLATE-compressed in a stream (never ``size`` bytes in memory)."""
    z = zlib.compressobj(9)
    zeros = bytes(MIB)
    return b"".join([z.compress(zeros) for _ in range(size // MIB)] + [z.flush()])


def _webp_claiming(width: int, height: int) -> bytes:
    """A real lossless WebP tile whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(imagecodecs.webp_encode(np.zeros((64, 64, 3), np.uint8), lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
    struct.pack_into("<I", data, 21, bits | (width - 1) | ((height - 1) << 14))
    return bytes(data)


def _huge_sparse_image(folder: Path, name: str, pixel: float, origin=(780000, 1450000)) -> Path:
    """A 30000 x 30000 tiled GeoTIFF with no tile written (a header of a few KiB); the
    default origin lies in the farm below."""
    path = folder / name
    with rasterio.open(path, "w", driver="GTiff", width=30000, height=30000, count=1, dtype="uint16", tiled=True,
                       blockxsize=512, blockysize=512, compress="DEFLATE", sparse_ok=True, crs="EPSG:32643",
                       transform=from_origin(*origin, pixel, pixel)):
        pass
    return path


def _patch_pixel_scale(path: Path, value: float) -> None:
    """Set ModelPixelScale's x and y (3 doubles stored at an offset) to ``value``."""
    data = bytearray(path.read_bytes())
    entry = first_ifd_entries(bytes(data))[33550]
    where = struct.unpack_from("<I", data, entry + 8)[0]
    struct.pack_into("<dd", data, where, value, value)
    path.write_bytes(bytes(data))


FARM = {"type": "Polygon", "coordinates": [[[77.58, 13.09], [77.60, 13.09], [77.60, 13.11], [77.58, 13.11],
                                            [77.58, 13.09]]]}  # about 2.2 km x 2.2 km


def hostile_cases(folder: Path) -> dict[str, tuple[dict, FaultRule | None, set[str]]]:
    """name -> (read, fault served for it, accepted error types)."""
    b04 = S2_B04.read_bytes()
    cases: dict[str, tuple[dict, FaultRule | None, set[str]]] = {}

    def add(name: str, data: bytes | None, op: str, fault: FaultRule | None, errors: set[str], **extra) -> None:
        if data is not None:
            (folder / f"{name}.tif").write_bytes(data)
        read = {"op": op, "url": f"s3://hostile-bucket/{name}.tif", **extra}
        cases[name] = (read, fault, errors)

    glob = lambda name: f"*/{name}.tif"  # noqa: E731
    add("overlong_206_announced", b04, "header",
        FaultRule("overlong", glob("overlong_206_announced"), times=100, after_bytes=1 << 30), {"ShortReadError"})
    add("overlong_206_chunked", b04, "header",
        FaultRule("overlong", glob("overlong_206_chunked"), times=100, after_bytes=1 << 30, chunked=True),
        {"ShortReadError"})
    huge_count = bytearray(b04)
    set_first_element(huge_count, 325, 0x7FFFFFF0)
    add("unknown_total_and_2gib_tile", bytes(huge_count), "window",
        FaultRule("unknown_total", glob("unknown_total_and_2gib_tile"), times=100), {"LimitError"})
    # a 600 MiB object (sparse on disk) from a server that ignores Range
    with open(folder / "ignores_range.tif", "wb") as fh:
        fh.write(b04)
        fh.truncate(600 * MIB)
    add("ignores_range_600mib", None, "window", FaultRule("ignore_range", "*/ignores_range.tif", times=100),
        {"HttpStatusError"}, url="s3://hostile-bucket/ignores_range.tif")
    samples = bytearray(b04)
    samples[78] = 64  # SamplesPerPixel 1 -> 64: what the hypothesis test found
    add("samples_per_pixel_64", bytes(samples), "window", None, {"LimitError"})
    lerc = _lerc_deflate_file(folder).read_bytes()
    add("lerc_inner_deflate_bomb", with_first_tile(lerc, _deflate_bomb(512 * MIB)), "window", None, {"DecodeError"})
    webp = _webp_file(folder).read_bytes()
    add("webp_claiming_16383px", with_first_tile(webp, _webp_claiming(16383, 16383)), "window", None, {"DecodeError"})
    _huge_sparse_image(folder, "tiny_pixels.tif", 0.1)
    add("farm_aoi_on_0.1m_pixels", None, "aoi", None, {"LimitError"}, url="s3://hostile-bucket/tiny_pixels.tif",
        geometry=FARM)
    # a tampered transform: pixels of 1e-7 m make the whole image one corner of the farm
    _patch_pixel_scale(_huge_sparse_image(folder, "tampered_transform.tif", 10.0, (780836, 1449633)), 1e-7)
    add("tampered_transform_1e-7m", None, "aoi", None, {"LimitError"},
        url="s3://hostile-bucket/tampered_transform.tif", geometry=FARM)
    return cases


def test_hostile_responses_and_files_stay_within_memory_bounds(tmp_path, record_property):
    folder = tmp_path / "hostile"
    folder.mkdir()
    cases = hostile_cases(folder)
    with ObjectStoreServer(buckets={"hostile-bucket": folder}) as server:
        for _read, fault, _ in cases.values():
            if fault is not None:
                server.add_fault(fault)
        options = {"endpoint_url": server.endpoint_url, "retries": 5, "backoff_base": 0.001, "backoff_max": 0.01}
        reads = [{**read, "options": options} for read, _, _ in cases.values()]
        warmup = [{"op": "window", "url": "s3://hostile-bucket/lerc.tif", "options": options}]
        results = run_child({"reads": reads, "warmup": warmup})
    report = {}
    for (name, (_read, _fault, errors)), outcome in zip(cases.items(), results):
        report[name] = (outcome.get("error_type"), round(outcome["peak_rss_extra"] / MIB, 1),
                        round(outcome["peak_traced"] / MIB, 1), outcome["requests"], outcome["retries"])
        assert outcome.get("error_type") in errors, (name, outcome)
        assert outcome["peak_rss_extra"] < HOSTILE_MEMORY_BOUND and outcome["peak_traced"] < HOSTILE_MEMORY_BOUND, name
        assert outcome["retries"] == 0, (name, outcome)  # malformed, not transient: never repeated
        record_property(f"reliability.peak_mib_{name}", max(report[name][1], report[name][2]))
    print(json.dumps(report, indent=1))
    assert results[0]["bytes_fetched"] == 0  # a 1 GiB announced body is refused unread
    assert results[1]["bytes_fetched"] <= 64 * 1024 + 1  # a chunked one: one byte past the ask
    record_property("reliability.hostile_memory_cases", len(cases))
