"""The command line speaks the command line's language: flags in advice, a bad date named, a
broken AOI file in one line, collections by a unique prefix, band codes in any case, each
warning once."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import built, demo, FARM, rasteret  # noqa: F401 - module fixtures


def test_an_existing_collection_is_answered_with_the_flags(built, demo):
    again = rasteret("build", "blr", "--source", str(demo[1]), "--start", "2024-01-01", "--end", "2024-01-31",
                     env=demo[2], check=1)
    assert "--overwrite" in again.stderr and "--refresh" in again.stderr and "=True" not in again.stderr


def test_a_bad_date_is_named(built, demo, tmp_path):
    done = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04", "--start", "2024-13-01", "--end",
                    "2024-01-31", "-o", str(tmp_path / "o"), env=demo[2], check=2)
    assert "'2024-13-01' is not a date (YYYY-MM-DD)" in done.stderr and "give both" not in done.stderr


def test_a_broken_aoi_file_is_one_line(built, demo, tmp_path):
    broken = tmp_path / "fields.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    done = rasteret("read", built, "--aois", str(broken), "-b", "B04", "-o", str(tmp_path / "o"), env=demo[2], check=1)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rasteret: error: cannot read the AOI file {broken}")


def test_a_unique_prefix_and_lower_case_band_codes_work(built, demo, tmp_path):
    done = rasteret("read", "blr", "--bbox", *FARM.split(), "-b", "b04", "--cloud-cover-lt", "20", "-o",
                    str(tmp_path / "out"), env=demo[2])
    assert sorted(Path(p).name for p in done.stdout.split()) == ["B04_bbox_20240105.tif", "B04_bbox_20240115.tif"]


def test_each_warning_is_printed_once(built, demo, tmp_path):
    far = ["10.0", "10.0", "10.01", "10.01"]  # no scene there
    done = rasteret("read", built, "--bbox", *far, "-b", "B04", "-o", str(tmp_path / "o"), env=demo[2], check=3)
    warned = [line for line in done.stderr.splitlines() if line.startswith("rasteret: warning")]
    assert warned and len(warned) == len(set(warned))


def test_read_keeps_the_radiometry_raw_or_as_reflectance(built, demo, tmp_path):
    import numpy as np
    import rasterio

    raw = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04", "--start", "2024-01-05", "--end",
                   "2024-01-05", "-o", str(tmp_path / "raw"), env=demo[2])
    refl = rasteret("read", built, "--bbox", *FARM.split(), "-b", "B04,SCL", "--start", "2024-01-05", "--end",
                    "2024-01-05", "--reflectance", "--mask-clouds", "-o", str(tmp_path / "refl"), env=demo[2])
    (raw_path,) = raw.stdout.split()
    refl_path = next(p for p in refl.stdout.split() if Path(p).name.startswith("B04_"))
    with rasterio.open(raw_path) as src:
        dn, scale, offset = src.read(1), src.scales[0], src.offsets[0]
        assert src.dtypes[0] == "uint16" and src.descriptions == ("B04",)
    assert (scale, offset) != (1.0, 0.0)  # the stored rule, not GDAL's identity default
    with rasterio.open(refl_path) as src:
        reflectance = src.read(1)
        assert src.dtypes[0] == "float32"
    clear = np.isfinite(reflectance)
    assert clear.any()
    np.testing.assert_allclose(reflectance[clear], dn[clear] * scale + offset, rtol=1e-6)


def test_export_writes_a_virtual_zarr_store_rasterio_agrees_with(built, demo, tmp_path):
    import numpy as np
    import rasterio
    import xarray as xr

    from rasteret_core.collection.virtual_zarr import open_virtual_zarr

    done = rasteret("export", "blr", str(tmp_path / "blr.icechunk"), "-b", "b04", "--json", env=demo[2])
    written = __import__("json").loads(done.stdout)
    assert len(written["groups"]) == 3 and written["chunks"] > 0 and written["skipped"] == []
    group = written["groups"][0]
    store = open_virtual_zarr(tmp_path / "blr.icechunk")
    raw = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False).B04.values
    scene_id = group.split("/")[1]
    (cog,) = Path(demo[0]).rglob(f"{scene_id}/B04.tif")
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(raw, src.read(1))
    items = rasteret("export", "blr", str(tmp_path / "items.parquet"), "--format", "stac-geoparquet", env=demo[2])
    assert items.stdout.strip() == str(tmp_path / "items.parquet")
