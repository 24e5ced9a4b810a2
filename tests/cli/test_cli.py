"""The ``rasteret`` command as a user runs it (a child process): build, list, describe and read
a collection of the demo scenes served by a local S3-compatible server; --help on every
command; exit codes scripts can test."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rasteret_core.cli import COMMANDS
from tests.helpers.demo import served_demo, user_env

ROOT = Path(__file__).resolve().parents[2]
FARM = "77.55 13.03 77.57 13.05"  # the README's farm_a, inside the demo scenes


def rasteret(*args: str, env: dict[str, str], check: int | None = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "rasteret_core.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    if check is not None:
        assert done.returncode == check, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return done


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    with served_demo(root) as (items, endpoint):
        yield root, items, user_env(AWS_ENDPOINT_URL=endpoint, RASTERET_WORKSPACE=str(root / "ws"))


@pytest.fixture(scope="module")
def built(demo):
    root, items, env = demo
    done = rasteret("build", "blr", "--source", str(items), "--start", "2024-01-01", "--end", "2024-01-31",
                    "--bbox", "77.5", "12.9", "77.7", "13.1", "--bands", "B04,B08,SCL", env=env)
    assert done.stdout.startswith("blr_202401-01_items: 3 scenes on 3 dates written")
    return "blr_202401-01_items"


def test_the_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["rasteret"] == "rasteret_core.cli:main"


@pytest.mark.parametrize("command", [None, *sorted(COMMANDS)])
def test_every_command_has_help(command, demo):
    args = ([command] if command else []) + ["--help"]
    done = rasteret(*args, env=demo[2])
    assert done.stdout.startswith("Usage: rasteret") and "--help" in done.stdout


def test_collections_and_info_describe_what_was_built(built, demo):
    env = demo[2]
    listed = json.loads(rasteret("collections", "--json", env=env).stdout)
    assert [(c["name"], c["size"]) for c in listed] == [(built, 3)]
    assert rasteret("collections", env=env).stdout.startswith(f"{built}  items  2024-01-05..2024-01-15  3 scenes")
    info = json.loads(rasteret("info", built, "--json", env=env).stdout)
    assert info["scenes_per_date"] == {"2024-01-05": 1, "2024-01-10": 1, "2024-01-15": 1}
    assert "2024-01-10  1" in rasteret("info", built, env=env).stdout


def test_read_writes_one_geotiff_per_band_aoi_and_date(built, demo, tmp_path):
    env = demo[2]
    done = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04", "--cloud-cover-lt", "20", "-o",
                    str(tmp_path / "out"), env=env)
    files = sorted(Path(p).name for p in done.stdout.split())
    assert files == ["B04_bbox_20240105.tif", "B04_bbox_20240115.tif"]  # the 10th is 38 % cloudy
    assert "0 header requests" in done.stderr
    with rasterio.open(tmp_path / "out" / files[0]) as src:
        assert src.crs.to_epsg() == 32643 and src.dtypes[0] == "uint16"


def test_exit_codes_scripts_can_test(built, demo, tmp_path):
    env = demo[2]
    empty = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04", "--start", "2024-02-01", "--end",
                     "2024-02-02", "-o", str(tmp_path / "o"), env=env, check=3)
    assert "rasteret: warning: empty result: no scene in collection" in empty.stderr
    again = rasteret("build", "blr", "--source", str(demo[1]), "--start", "2024-01-01", "--end", "2024-01-31",
                     env=env, check=1)
    assert again.stderr.startswith("rasteret: error: a collection already exists") and "Traceback" not in again.stderr
    rasteret("read", built, "--bogus", env=env, check=2)
    nothing = rasteret("build", "none", "--source", str(demo[1]), "--start", "2023-01-01", "--end", "2023-01-31",
                       env=env, check=3)
    assert "no collection was written" in nothing.stdout
    rasteret("info", "missing", env=env, check=1)


def test_an_unreachable_endpoint_exits_1_naming_the_cause(built, demo, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    done = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04", "-o", str(tmp_path / "o"),
                    "--endpoint-url", endpoint, "--retries", "0", env=demo[2], check=1)
    assert "all 3 read(s) failed" in done.stderr and "connection failed" in done.stderr and endpoint in done.stderr
    assert "Traceback" not in done.stderr


# --- rasteret plan: the same collection, planned before it is read ------------------------
def test_plan_prints_the_requests_and_bytes_the_read_then_makes(built, demo, tmp_path):
    env = demo[2]
    args = ("--bbox", *FARM.split(), "-b", "B04,B08", "--cloud-cover-lt", "20")
    plan = json.loads(rasteret("plan", built, *args, "--json", env=env).stdout)
    assert plan["read"] == "get_xarray" and plan["requests"] > 0 and plan["header_requests"] == 0
    assert plan["price_usd"] == 0 and plan["prices"]["as_of"]  # a public bucket: the reader pays nothing
    done = rasteret("read", built, *args, "-o", str(tmp_path / "out"), env=env)
    requests, size = map(int, re.search(r"(\d+) requests, (\d+) bytes", done.stderr).groups())
    assert (plan["requests"], plan["bytes"]) == (requests, size)
    text = rasteret("plan", built, *args, env=env).stdout
    assert f"{plan['requests']} requests" in text and "$0" in text


def test_plan_of_points_and_given_prices(built, demo):
    env = demo[2]
    lon, lat = FARM.split()[:2]
    plan = json.loads(rasteret("plan", built, "--point", lon, lat, "--point", "77.56", "13.04", "-b", "B04",
                               "--get-price", "0.001", "--json", env=env).stdout)
    assert plan["read"] == "sample_points" and plan["requests"] > 0
    assert plan["prices"]["get_per_1000"] == 0.001 and plan["prices"]["as_of"] == "given"


def test_plan_of_an_area_no_scene_covers_exits_3(built, demo):
    done = rasteret("plan", built, "--bbox", "10", "10", "10.1", "10.1", "-b", "B04", env=demo[2], check=3)
    assert "nothing to read" in done.stderr


def ndvi_truth(root: Path, scene_id: str, box) -> np.ndarray:
    """NDVI by hand on rasterio's reading of the demo files: the AOI's crop (rasterio.mask), the
    20 m SCL brought onto it by reproject (nearest), reflectance = DN / 10000 - 0.1 (baseline
    04.00 offset), cloud classes masked."""
    import rasterio.mask
    from rasterio.enums import Resampling
    from rasterio.warp import reproject, transform_geom

    from rasteret_core.raster.masks import scl_cloud_mask

    folder = next(root.rglob(f"{scene_id}/B04.tif")).parent
    with rasterio.open(folder / "B04.tif") as src:
        shape_ = transform_geom("EPSG:4326", src.crs, box.__geo_interface__)
        red, transform = rasterio.mask.mask(src, [shape_], crop=True, filled=False)
        crs = src.crs
    with rasterio.open(folder / "B08.tif") as src:
        nir, _ = rasterio.mask.mask(src, [shape_], crop=True, filled=False)
    scl = np.zeros(red.shape[1:], np.uint8)
    with rasterio.open(folder / "SCL.tif") as src:
        reproject(src.read(1), scl, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest)
    r, n = red[0].data * 1e-4 - 0.1, nir[0].data * 1e-4 - 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((n - r) / (n + r)).astype(np.float32)
    bad = red[0].mask | nir[0].mask | (red[0].data == 0) | (nir[0].data == 0) | scl_cloud_mask(scl)
    out[bad | ~np.isfinite(out)] = np.nan
    return out


def test_index_writes_cogs_a_table_and_a_chart_of_the_true_ndvi(built, demo, tmp_path):
    import pandas as pd
    import shapely

    root, _, env = demo
    out = tmp_path / "ndvi"
    done = rasteret("index", "ndvi", built, "--bbox", *FARM.split(), "--cloud-cover-lt", "20", "-o", str(out),
                    "--json", env=env)
    report = json.loads(done.stdout)
    assert report["index"] == "NDVI" and report["header_requests"] == 0 and report["requests"] > 0
    assert sorted(Path(p).name for p in report["cogs"]) == ["NDVI_bbox_20240105.tif", "NDVI_bbox_20240115.tif"]
    table = pd.read_csv(report["csv"], parse_dates=["date"])
    assert list(table["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-05", "2024-01-15"]
    assert Path(report["chart"]).stat().st_size > 10_000
    box = shapely.box(*map(float, FARM.split()))
    for path, day, row in zip(sorted(report["cogs"]), ("20240105", "20240115"), table.itertuples()):
        want = ndvi_truth(root, f"S2A_43PGQ_{day}_0_L2A", box)
        with rasterio.open(path) as src:
            got, tags = src.read(1), src.tags()
            assert src.descriptions == ("NDVI",) and tags["FORMULA"] == "(N-R)/(N+R)" and tags["AOI"] == "bbox"
        assert np.isfinite(want).sum() > 1000
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert row.median == pytest.approx(float(np.nanmedian(want)), rel=1e-5)


def test_index_errors_name_the_index_and_the_missing_band(built, demo, tmp_path):
    env = demo[2]
    unknown = rasteret("index", "NDVJ", built, "--bbox", *FARM.split(), "-o", str(tmp_path), env=env, check=1)
    assert "did you mean" in unknown.stderr and "NDVI" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = rasteret("index", "EVI", built, "--bbox", *FARM.split(), "-o", str(tmp_path), env=env, check=1)
    assert "EVI needs band(s) B02" in missing.stderr and "Traceback" not in missing.stderr
