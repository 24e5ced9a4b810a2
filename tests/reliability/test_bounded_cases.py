"""Every input the bounded-inputs work named, valid or hostile, run in a fresh child process
with its peak resident growth and wall time measured: hostile inputs are refused by name with
under 256 MiB of growth; valid large inputs are read under a 256 MiB memory budget.

The children start with their own peak RSS (``with_own_peak_rss``), import first and measure
only the call (``_children/bounded_case.py``). Figures are recorded as test properties."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from rasteret_core.budget import ENV
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.collection.conftest import make_s2_scenes
from tests.helpers.children import with_own_peak_rss
from tests.reliability.test_untrusted_collection import build, tamper, target

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_BOUND_MIB = 256
BUDGET_MIB = 256
SIZE = 2048  # the scene of the measurements: 2048 x 2048 at 10 m


def run_case(case: str, record_property, **args) -> dict:
    env = {**os.environ, ENV: f"{BUDGET_MIB}MiB", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(with_own_peak_rss([sys.executable, "-m", "tests.reliability._children.bounded_case",
                                             json.dumps({"case": case, **args})]),
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    outcome = json.loads(line[len("RESULT "):])
    name = "_".join(str(v) for v in (case, *args.get("label", ()))).replace(".", "_")
    record_property(f"reliability.bounded_{name}_peak_rss_mib", outcome["peak_rss_mib"])
    record_property(f"reliability.bounded_{name}_seconds", outcome["seconds"])
    return outcome


@pytest.fixture(scope="module")
def big_scene(tmp_path_factory) -> tuple[str, int]:
    """A 2048 x 2048 uint16 COG at 10 m (UTM 43N) and the sum of its pixels, read by rasterio."""
    path = tmp_path_factory.mktemp("big") / "B04.tif"
    data = ((np.arange(SIZE * SIZE, dtype=np.uint32) * 7919) % 9000 + 1).astype(np.uint16).reshape(SIZE, SIZE)
    with rasterio.open(path, "w", driver="COG", width=SIZE, height=SIZE, count=1, dtype="uint16", crs="EPSG:32643",
                       transform=from_origin(700_000, 1_450_000, 10, 10), compress="DEFLATE", blocksize=512,
                       nodata=0) as dst:
        dst.write(data, 1)
    with rasterio.open(path) as src:
        return str(path), int(src.read(1).astype(np.int64).sum())


# --- valid large inputs: read under the budget ----------------------------------------------
@pytest.mark.parametrize("degrees", [0.5, 1.0, 2.0])
def test_an_aoi_degrees_wide_around_one_scene_reads_the_scene_under_the_budget(big_scene, degrees, record_property):
    """Before: +1.2 GiB at 0.5 degrees, +4.4 GiB at 1, a MemoryError at 2 (a 10 GiB cap)."""
    path, total = big_scene
    got = run_case("aoi", record_property, cog=path, degrees=degrees, label=(degrees,))
    assert "error_type" not in got, got
    assert got["summary"] == {"shape": [1, SIZE, SIZE], "sum": total}  # every pixel of the scene, once
    assert got["peak_rss_mib"] < BUDGET_MIB


@pytest.mark.parametrize("box", [(-180, -90, 180, 90), (0, -90, 180, 90)], ids=["world", "eastern_hemisphere"])
def test_a_world_sized_aoi_gives_the_scenes_pixels(big_scene, box, record_property):
    """Before: 0 datasets and the diagnosis 'geometries smaller than a pixel'."""
    path, total = big_scene
    got = run_case("aoi", record_property, cog=path, box=box, label=(f"box{box[0]}",))
    assert "error_type" not in got, got
    assert got["summary"] == {"shape": [1, SIZE, SIZE], "sum": total}
    assert got["peak_rss_mib"] < BUDGET_MIB


# --- hostile files and arguments: refused by name, bounded ----------------------------------
@pytest.mark.parametrize("samples", [400, 65535])
def test_a_header_claiming_many_planes_is_refused_in_bounded_memory(big_scene, samples, record_property):
    """Before: 1.6 GiB returned at 400 samples, a bare MemoryError for 256 GiB at 65,535."""
    got = run_case("planar", record_property, cog=big_scene[0], samples=samples, label=(samples,))
    assert got.get("error_type") == "LimitError" and f"{samples} sample" in got["error"], got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


def test_a_window_over_one_pixel_tiles_is_refused_in_bounded_memory(big_scene, record_property):
    got = run_case("tiny_tiles", record_property, cog=big_scene[0])
    assert got.get("error_type") == "LimitError", got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """A collection whose first scene's stored B04 claims 1 x 1 tiles on a 200,000 x 200,000 grid."""
    buckets = tmp_path_factory.mktemp("buckets")
    with ObjectStoreServer(buckets={"cogs": buckets}) as store:
        items = make_s2_scenes(buckets, href_prefix=f"{store.endpoint_url}/cogs")
        workspace = tmp_path_factory.mktemp("tampered")
        r = build(workspace, items)
        scene_id, aoi = target(r)
        tamper(r, scene_id, "B04", width=200_000, height=200_000, tile_width=1, tile_height=1)
        yield {"workspace": str(workspace / "workspace"), "name": r.name, "aoi": list(aoi.bounds)}, scene_id


def test_a_stored_row_of_one_pixel_tiles_fails_its_scene_by_name_in_read(tampered, record_property):
    """Before: +2.3 GiB, then a MemoryError after 11-14 s (read, plan and load alike)."""
    collection, scene_id = tampered
    got = run_case("stored_read", record_property, **collection)
    assert "error_type" not in got, got
    assert any(scene_id in f and "StoredHeaderError" in f for f in got["summary"]["failures"]), got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


def test_a_stored_row_of_one_pixel_tiles_is_bounded_in_plan(tampered, record_property):
    collection, scene_id = tampered
    got = run_case("stored_plan", record_property, **collection)
    assert "error_type" not in got and got["summary"]["requests"] > 0, got  # the other scenes are planned
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


def test_a_stored_row_of_one_pixel_tiles_is_left_out_of_a_load_with_a_warning(tampered, record_property):
    collection, scene_id = tampered
    got = run_case("stored_load", record_property, **collection, resolution=10, expect_warning=True)
    assert "error_type" not in got, got
    assert any(scene_id in w and "StoredHeaderError" in w for w in got["summary"]["warnings"]), got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


@pytest.mark.parametrize("resolution, chunks, error", [
    (0.01, 2048, "GridError"),  # before: still planning after 100 s
    (0, None, "GridError"), (math.nan, None, "GridError"), (-10, None, "GridError"),
], ids=["1cm", "zero", "nan", "negative"])
def test_an_impossible_load_grid_is_refused_before_planning(tampered, resolution, chunks, error, record_property):
    collection, _ = tampered
    x0, y0, x1, y1 = collection["aoi"]
    args = {**collection, "aoi": [x0 - 0.1, y0 - 0.1, x1 + 0.1, y1 + 0.1], "resolution": resolution}
    if chunks:
        args["chunks"] = {"x": chunks, "y": chunks}
    got = run_case("stored_load", record_property, **args, label=(str(resolution),))
    assert got.get("error_type") == error, got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB and got["seconds"] < 30


def test_a_huge_point_neighbourhood_is_an_argument_error(tampered, record_property):
    """Before: 4.19 M rows and +1.7 GiB for one point."""
    got = run_case("neighbourhood", record_property, **tampered[0], n=99999)
    assert got.get("error_type") == "ArgumentError", got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB


@pytest.mark.parametrize("value", [-5, math.nan], ids=["negative", "nan"])
def test_an_impossible_cloud_filter_is_an_argument_error(tampered, value, record_property):
    """Before: an empty result with a warning."""
    got = run_case("cloud_filter", record_property, **tampered[0], value=value, label=(str(value),))
    assert got.get("error_type") == "ArgumentError", got


def test_a_fine_load_over_a_large_area_plans_lazily(tampered, record_property):
    """1 m over 2 degrees (before: 28 s and +180 MiB to build every chunk task up front)."""
    collection, _ = tampered
    x0, y0, x1, y1 = collection["aoi"]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    got = run_case("stored_load", record_property, **{**collection, "aoi": [cx - 1, cy - 1, cx + 1, cy + 1]},
                   resolution=1, chunks={"x": 2048, "y": 2048}, graph_only=True, label=("1m_2deg",))
    assert "error_type" not in got or got["error_type"] == "LoadError", got
    assert got["peak_rss_mib"] < HOSTILE_BOUND_MIB
