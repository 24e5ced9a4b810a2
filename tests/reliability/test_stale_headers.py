"""Stale headers are detected, never decoded.

A collection stores each COG's header with the file's validator (ETag, else Last-Modified and
size; size and mtime for local files). A COG replaced under the same key afterwards (another
codec and tile layout, so the stored offsets would point into unrelated bytes) must fail its
reads with ``StaleHeaderError`` naming the file, before any of its bytes arrive; the other
scenes read normally, and a refresh re-harvests exactly the replaced item. Servers: the
project's object store stand-in, moto, the Azure stand-in, and local files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import rasterio.windows
from hypothesis import given, strategies as st

from rasteret_core.cog import CogClient, read_header, read_window, ReaderOptions, StaleHeaderError
from rasteret_core.cog.fetch import condition_headers, RangeFetcher, validator_of
from rasteret_core.cog.reader import run_sync
from rasteret_core.cog.urls import resolve
from rasteret_core.collection import build_collection, build_date, Collection
from rasteret_core.collection.freshness import changed_assets
from rasteret_core.collection.schema import band_type
from rasteret_core.read import read_aois
from rasteret_core.stac.sources import DataSource
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.collection.conftest import make_s2_scenes, S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")
BANDS = ["B04", "B08", "SCL"]


# --- helpers ---------------------------------------------------------------------------------
def replace_cog(path: Path) -> np.ndarray:
    """Put another COG under ``path`` (as an upload replacing the object would): same grid,
    other codec (LZW, no predictor) and tile layout (128 px), other pixels. Returns its pixels."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read(1)
    new = (data[::-1, ::-1].astype(np.int64) * 3 % 60000).astype(data.dtype)
    profile.update(driver="COG", compress="LZW", blocksize=128)
    for key in ("blockxsize", "blockysize", "tiled", "interleave", "predictor"):
        profile.pop(key, None)
    tmp = path.with_suffix(".new.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(new, 1)
    os.replace(tmp, path)
    return new


def scene_dir(root: Path, scene_id: str) -> Path:
    return root / scene_id


def one_cog(path: Path) -> Path:
    """A 512 x 512 uint16 DEFLATE + predictor COG with 256 px tiles."""
    yy, xx = np.mgrid[0:512, 0:512]
    profile = dict(driver="COG", width=512, height=512, count=1, dtype="uint16", crs="EPSG:32643",
                   transform=rasterio.transform.from_origin(770000, 1440000, 10, 10), compress="DEFLATE",
                   predictor=2, blocksize=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write((1000 + 3 * xx + 2 * yy).astype("uint16"), 1)
    return path


def build(items: list[dict], tmp_path: Path) -> Collection:
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    source = DataSource.from_items_file(items_file, S2_BAND_MAP, name="s2-stale", collection="sentinel-2-l2a")
    report = build_collection(source, root=tmp_path / "collection", date_range=JANUARY, progress=False)
    assert report.failures == [] and report.scenes == 6
    return report.collection


def interior_box(scene):
    """A lon/lat polygon well inside the scene's footprint (its central third)."""
    import shapely

    x0, y0, x1, y1 = scene.geometry.bounds
    dx, dy = (x1 - x0) / 3, (y1 - y0) / 3
    return shapely.box(x0 + dx, y0 + dy, x1 - dx, y1 - dy)


def expected_pixels(path: Path, raster) -> np.ndarray:
    """What rasterio reads from ``path`` on the raster's grid (the reference, not the code under test)."""
    rows, cols = raster.data.shape
    with rasterio.open(path) as src:
        bounds = rasterio.transform.array_bounds(rows, cols, raster.transform)
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
        return src.read(1, window=window)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("buckets")
    with ObjectStoreServer(root) as store:
        yield store


@pytest.fixture
def bucket(server, tmp_path):
    """A fresh bucket of the six synthetic scenes on the object store, and their items."""
    name = f"b{os.urandom(4).hex()}"
    folder = server.root / name
    items = make_s2_scenes(folder, href_prefix=f"{server.endpoint_url}/{name}")
    server.wait_idle()
    server.reset_stats()
    return folder, items


# --- the object store stand-in's conditional GET ---------------------------------------------
def _get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    async def go():
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            return resp.status, resp.headers.copy(), await resp.read()
    return run_sync(go)


def test_object_store_answers_conditional_gets_as_s3(server, tmp_path):
    folder = server.root / "conditional"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"0123456789")
    url = server.url("conditional", "a.bin")
    status, headers, _ = _get(url, Range="bytes=0-3")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 206 and etag.startswith('"')
    assert _get(url, Range="bytes=0-3", **{"If-Match": etag})[0] == 206
    status, headers, body = _get(url, Range="bytes=0-3", **{"If-Match": '"other"'})
    assert status == 412 and b"<Code>PreconditionFailed</Code>" in body and b"<Condition>If-Match</Condition>" in body
    assert _get(url, **{"If-None-Match": etag})[0] == 304
    assert _get(url, Range="bytes=0-3", **{"If-None-Match": '"other"'})[0] == 206
    assert _get(url, **{"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 412
    assert _get(url, **{"If-Unmodified-Since": modified})[0] == 200
    # If-Match wins over If-Unmodified-Since, as in S3
    assert _get(url, **{"If-Match": etag, "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200

    # a replacement of the same size with the same mtime (a copy keeping times) still changes the ETag
    stat = (folder / "a.bin").stat()
    (folder / "b.bin").write_bytes(b"9876543210")
    os.utime(folder / "b.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(folder / "b.bin", folder / "a.bin")
    assert (folder / "a.bin").stat().st_mtime_ns == stat.st_mtime_ns
    status, headers, _ = _get(url, Range="bytes=0-3", **{"If-Match": etag})
    assert status == 412 and headers["ETag"] != etag


def test_moto_answers_the_same_conditional_gets(moto_s3):
    client = moto_s3.client()
    key = "conditional/a.bin"
    client.put_object(Bucket=moto_s3.public_bucket, Key=key, Body=b"0123456789", ACL="public-read")
    url = f"{moto_s3.endpoint_url}/{moto_s3.public_bucket}/{key}"
    status, headers, _ = _get(url, Range="bytes=0-3")
    etag = headers["ETag"]
    assert status == 206
    statuses = [_get(url, Range="bytes=0-3", **{"If-Match": etag})[0],
                _get(url, Range="bytes=0-3", **{"If-Match": '"other"'})[0],
                _get(url, **{"If-None-Match": etag})[0],
                _get(url, **{"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0]]
    assert statuses == [206, 412, 304, 412]


# --- reads from a collection -----------------------------------------------------------------
def test_a_replaced_cog_fails_as_stale_before_any_byte_and_the_other_scenes_read(bucket, server, tmp_path):
    folder, items = bucket
    collection = build(items, tmp_path)
    scenes = list(collection.scenes(bands=BANDS))
    assert all(a.header.validator.startswith("etag:") for s in scenes for a in s.bands.values())
    victim = scenes[0]
    replaced = replace_cog(scene_dir(folder, victim.id) / "B04.tif")

    server.wait_idle()
    server.reset_stats()
    geoms = {f"tile{i}": interior_box(s) for i, s in enumerate(scenes[:2])}  # the two tiles, 3 dates each
    result = read_aois(scenes, geoms, ["B04"], reader_options=ReaderOptions(), progress=False)
    stale = result.failures
    assert [(f.scene_id, f.band) for f in stale] == [(victim.id, "B04")]
    assert "stale header" in stale[0].error and "refresh the collection" in stale[0].error.lower()
    assert f"{victim.id}/B04.tif" in stale[0].error  # names the file
    # what a user sees (the read's warning or error): cause, scene, band and file
    from rasteret_core.read.diagnosis import first_causes

    [shown] = first_causes(stale)
    assert shown.startswith("stale header") and f"e.g. {victim.id} B04 at " in shown
    # not one byte of the replaced file was served, so none was decoded
    hits = server.requests_for(f"/*/{victim.id}/B04.tif")
    assert hits and {r.status for r in hits} == {412} and sum(r.bytes_sent for r in hits) == 0
    # the scenes whose files did not change are read, pixel for pixel
    assert len(result.rasters) == 5 and victim.id not in {r.scene_id for r in result.rasters}
    for raster in result.rasters:
        expected = expected_pixels(scene_dir(folder, raster.scene_id) / "B04.tif", raster)
        np.testing.assert_array_equal(raster.data[~raster.outside], expected[~raster.outside])

    # a direct window read raises the error itself
    header = victim.bands["B04"].header
    with pytest.raises(StaleHeaderError, match=f"{victim.id}/B04.tif.*stale header"):
        read_window(header, ((0, 256), (0, 256)))
    # before: without the validator the stored offsets go to the new file and the answer is not its pixels
    try:
        wrong = read_window(replace(header, validator=None), ((0, 256), (0, 256)))[0]
    except Exception:  # noqa: BLE001 - a decode error is the other way it went wrong
        wrong = None
    assert wrong is None or not np.array_equal(wrong, replaced[:256, :256])


def test_changed_assets_names_exactly_the_replaced_file_with_one_request_per_file(bucket, server, tmp_path):
    folder, items = bucket
    collection = build(items, tmp_path)
    scenes = list(collection.scenes(bands=BANDS))
    assert changed_assets(scenes) == set()
    victim = scenes[3]
    replace_cog(scene_dir(folder, victim.id) / "B08.tif")
    server.wait_idle()
    server.reset_stats()
    assert changed_assets(scenes) == {(victim.id, "B08")}
    log = server.requests_for()
    assert len(log) == 18 and {r.range for r in log} == {"bytes=0-0"}  # one byte per stored file
    assert sorted(r.status for r in log) == [206] * 17 + [412]
    # a file that vanished is stale too
    (scene_dir(folder, victim.id) / "SCL.tif").unlink()
    assert changed_assets(scenes) == {(victim.id, "B08"), (victim.id, "SCL")}


def test_a_refresh_re_harvests_exactly_the_replaced_item(bucket, server, tmp_path):
    folder, items = bucket
    for item in items:
        item["properties"]["updated"] = "2024-01-20T00:00:00Z"
    collection = build(items, tmp_path)
    source = DataSource.from_items_file(tmp_path / "items.json", S2_BAND_MAP, name="s2-stale",
                                        collection="sentinel-2-l2a")
    day = dt.date(2024, 1, 10)
    on_day = list(collection.scenes(date_range=(day, day), bands=BANDS))
    assert len(on_day) == 2
    server.wait_idle()
    server.reset_stats()
    report = build_date(source, day, root=collection.root, progress=False)
    assert report.reused == 2 and {r.range for r in server.requests_for()} == {"bytes=0-0"}  # unchanged: checks only

    victim = on_day[1]
    new = replace_cog(scene_dir(folder, victim.id) / "B04.tif")
    server.wait_idle()
    server.reset_stats()
    report = build_date(source, day, root=collection.root, progress=False)
    assert report.reused == 1 and report.stats.header_requests == 3  # the replaced item's three bands, no other
    headers_read = sorted(r.path for r in server.requests_for() if r.range != "bytes=0-0")
    assert headers_read == sorted(f"/{folder.name}/{victim.id}/{b}.tif" for b in ("B04", "B08", "SCL"))
    assert len(server.requests_for()) == 6 + 3  # six version checks, three header reads
    fresh = {s.id: s for s in Collection.open(collection.root).scenes(date_range=(day, day), bands=BANDS)}
    assert fresh[victim.id].bands["B04"].header.tile_width == 128  # the new file's layout
    np.testing.assert_array_equal(read_window(fresh[victim.id].bands["B04"].header)[0], new)


def test_an_uncompressed_cog_replaced_is_stale_where_it_used_to_read_wrong_pixels(server):
    folder = server.root / "raw"
    yy, xx = np.mgrid[0:512, 0:512]

    def write(path, data, block):
        with rasterio.open(path, "w", driver="COG", width=512, height=512, count=1, dtype="uint16",
                           crs="EPSG:32643", transform=rasterio.transform.from_origin(0, 0, 10, 10),
                           compress="NONE", blocksize=block) as dst:
            dst.write(data, 1)

    folder.mkdir()
    write(folder / "a.tif", (1000 + xx + yy).astype("uint16"), 256)
    header = read_header(server.url("raw", "a.tif"))
    new = (5000 - xx).astype("uint16")
    write(folder / "n.tif", new, 128)
    os.replace(folder / "n.tif", folder / "a.tif")
    # before: no condition, no error, and the pixels are not the file's
    silent = read_window(replace(header, validator=None), ((0, 256), (0, 256)))[0]
    assert not np.array_equal(silent, new[:256, :256])
    server.wait_idle()
    server.reset_stats()
    with pytest.raises(StaleHeaderError):
        read_window(header, ((0, 256), (0, 256)))
    assert [(r.status, r.bytes_sent) for r in server.requests_for("/raw/*")] == [(412, 0)]
    # a whole-image read of 4 separate ranges: once one answers 412 the queued ones are not sent
    server.wait_idle()
    server.reset_stats()
    options = dict(max_concurrency=1, max_coalesced_bytes=256 * 256 * 2)
    with pytest.raises(StaleHeaderError):
        read_window(header, None, **options)
    server.wait_idle()  # answers are recorded after they are sent
    statuses = [r.status for r in server.requests_for("/raw/*")]
    assert set(statuses) == {412} and 1 <= len(statuses) <= 2  # at most the two in flight at once, never 4


def test_a_process_tile_cache_never_serves_a_replaced_files_tiles(server):
    from rasteret_core.load.runtime import Runtime

    folder = server.root / "cached"
    one_cog(folder / "a.tif")
    url = server.url("cached", "a.tif")
    runtime = Runtime(ReaderOptions(), cache_bytes=8 * 1024 * 1024)
    old = read_header(url)
    runtime.read([(old, (0, 64, 0, 64))])
    new = replace_cog(folder / "a.tif")
    fresh = read_header(url)  # what a refreshed collection holds
    np.testing.assert_array_equal(runtime.read([(fresh, (0, 64, 0, 64))])[0], new[:64, :64])


def test_collections_written_before_validators_still_read(bucket, server, tmp_path):
    folder, items = bucket
    collection = build(items, tmp_path)
    # drop the validator field from every band struct: a partition as older versions wrote it
    old_fields = [f for f in band_type() if f.name != "validator"]
    for part in Path(collection.root).rglob("*.parquet"):
        table = pq.read_table(part)
        for band in BANDS:
            column = table.column(band).combine_chunks()
            rows = [None if r is None else {k: v for k, v in r.items() if k != "validator"} for r in column.to_pylist()]
            index = table.schema.get_field_index(band)
            table = table.set_column(index, band, pa.array(rows, pa.struct(old_fields)))
        assert "validator" not in str(table.schema.field("B04").type)
        pq.write_table(table, part)
    scenes = list(Collection.open(collection.root).scenes(bands=BANDS))
    assert len(scenes) == 6 and all(a.header.validator is None for s in scenes for a in s.bands.values())
    server.wait_idle()
    server.reset_stats()
    result = read_aois(scenes, {f"tile{i}": interior_box(s) for i, s in enumerate(scenes[:2])}, ["B04"])
    assert result.failures == [] and len(result.rasters) == 6
    assert {r.status for r in server.requests_for()} == {206}
    # no condition is sent, but a changed size is still caught
    assert changed_assets(scenes) == set()


# --- moto, local files, Azure ------------------------------------------------------------------
def test_moto_object_replaced_under_its_key_raises_stale_header(moto_s3, tmp_path):
    client = moto_s3.client()
    src = one_cog(tmp_path / "a.tif")
    key = "stale/B04.tif"
    client.upload_file(str(src), moto_s3.public_bucket, key, ExtraArgs={"ACL": "public-read"})
    options = dict(endpoint_url=moto_s3.endpoint_url, region=moto_s3.region)
    url = f"s3://{moto_s3.public_bucket}/{key}"
    header = read_header(url, **options)
    assert header.validator.startswith("etag:")
    with rasterio.open(src) as ds:
        np.testing.assert_array_equal(read_window(header, ((0, 64), (0, 64)), **options)[0], ds.read(1)[:64, :64])
    replace_cog(src)
    client.upload_file(str(src), moto_s3.public_bucket, key, ExtraArgs={"ACL": "public-read"})
    with pytest.raises(StaleHeaderError, match="stale/B04.tif.*HTTP 412"):
        read_window(header, ((0, 64), (0, 64)), **options)
    assert changed_assets([_scene_of(header)], options) == {("s", "B04")}


def _scene_of(header):
    from shapely.geometry import box

    from rasteret_core.collection.scene import BandAsset, Scene

    return Scene("s", "c", dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), box(0, 0, 1, 1),
                 bands={"B04": BandAsset("B04", header.url, header)})


def test_a_replaced_local_file_raises_stale_header(tmp_path):
    path = one_cog(tmp_path / "scenes" / "B04.tif")
    header = read_header(path)
    assert header.validator.startswith("file:")
    read_window(header, ((0, 64), (0, 64)))
    replace_cog(path)
    with pytest.raises(StaleHeaderError, match="B04.tif.*size or modification time changed"):
        read_window(header, ((0, 64), (0, 64)))
    assert changed_assets([_scene_of(header)]) == {("s", "B04")}


class _LastModifiedOnlyStore(ObjectStoreServer):
    """The object store without ETags: servers that only send Last-Modified."""

    def add_routes(self, app):
        async def drop_etag(request, response):
            response.headers.popall("ETag", None)

        app.on_response_prepare.append(drop_etag)
        super().add_routes(app)


def test_without_an_etag_last_modified_and_size_are_the_validator(tmp_path):
    folder = tmp_path / "lm"
    path = one_cog(folder / "a.tif")
    with _LastModifiedOnlyStore(tmp_path) as store:
        url = store.url("lm", "a.tif")
        header = read_header(url)
        assert header.validator.startswith("modified:") and header.validator.endswith(f"|{path.stat().st_size}")
        read_window(header, ((0, 64), (0, 64)))
        stat = path.stat()
        replace_cog(path)  # another size, within the same second: If-Unmodified-Since still holds
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(StaleHeaderError, match="another version"):  # its Content-Range size
            read_window(header, ((0, 64), (0, 64)))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))  # modified later
        store.wait_idle()  # the answers above are recorded after they are sent
        store.reset_stats()
        with pytest.raises(StaleHeaderError, match="HTTP 412"):
            read_window(header, ((0, 64), (0, 64)))
        assert [(r.status, r.bytes_sent) for r in store.requests_for()] == [(412, 0)]


def test_signed_requests_sign_the_condition(aws_test_credentials):
    """SigV4 covers If-Match: a proxy cannot strip the condition without breaking the signature."""
    fetcher = RangeFetcher(ReaderOptions(sign=True, region="us-west-2"))
    loc = resolve("s3://bucket-name/key.tif", region="us-west-2")
    headers = fetcher._headers(loc, loc.http_url, 0, 16, 'etag:"abc"')
    assert headers["If-Match"] == '"abc"'
    assert "if-match" in headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


def test_azure_blob_stand_in_honours_if_match(tmp_path):
    from rasteret_core.cog.azure import PlanetaryComputerSigner
    from rasteret_core.testing.azure_blob import AzureBlobServer

    one_cog(tmp_path / "blobs" / "B04.tif")
    with AzureBlobServer({("acct", "cont"): tmp_path / "blobs"}) as blobs:
        options = ReaderOptions(signer=PlanetaryComputerSigner(token_url=blobs.token_url, accounts=["acct"]),
                                azure_endpoint_url=blobs.endpoint_url)
        url = "https://acct.blob.core.windows.net/cont/B04.tif"
        header = read_header(url, options=options)
        assert header.validator.startswith('etag:"0x')
        read_window(header, ((0, 64), (0, 64)), options=options)
        replace_cog(tmp_path / "blobs" / "B04.tif")
        blobs.reset_stats()
        with pytest.raises(StaleHeaderError, match="B04.tif.*HTTP 412"):
            read_window(header, ((0, 64), (0, 64)), options=options)
        assert [r.status for r in blobs.stats.log] == [412]


# --- validators ------------------------------------------------------------------------------
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=80))
def test_any_etag_becomes_a_safe_condition_or_none(etag):
    validator = validator_of({"ETag": etag}, None)
    headers = condition_headers(validator)
    for value in headers.values():
        assert value == etag.strip() and all(0x21 <= ord(c) <= 0x7E for c in value)
    if etag.strip().startswith("W/"):
        assert headers == {}  # If-Match never matches a weak ETag


@given(st.text(max_size=120))
def test_a_hostile_stored_validator_never_injects_a_header(validator):
    for name, value in condition_headers(validator).items():
        assert name in ("If-Match", "If-Unmodified-Since") and "\r" not in value and "\n" not in value
