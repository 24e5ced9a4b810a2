"""The assets end to end through a real (temporary) Dagster instance and local servers."""

from __future__ import annotations

import copy
import dataclasses

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.mask
from rasterio.warp import reproject, transform_geom
from rasterio.enums import Resampling

from rasteret_core.collection import Collection
from rasteret_core.products.aois import load_aois
from rasteret_core.products.timeseries import read_stats
from rasteret_core.raster.masks import scl_cloud_mask
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.resources import StacSource, Storage
from rasteret_pipelines.settings import aoi_file

from .conftest import BUCKET, PREFIX, write_items

COLLECTION = [defs.get_assets_def("scene_collection")]
NDVI = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
FARM = "hesaraghatta_farm"


def materialize(assets, key, resources, instance, **kwargs):
    return dg.materialize(assets, partition_key=key, resources=resources, instance=instance, **kwargs)


def ndvi_key(day, aoi=FARM):
    return dg.MultiPartitionKey({"date": day, "aoi": aoi})


def expected_ndvi(scenes, scene_id, aoi_geom):
    """numpy on rasterio's reading of the same pixels, scaled and masked (NDVI outside [-1, 1] dropped)."""
    return expected_index(scenes, scene_id, aoi_geom, lambda r, n: (n - r) / (n + r), unit_range=True)


def expected_index(scenes, scene_id, aoi_geom, formula, unit_range=False):
    """``formula(red, nir)`` on rasterio's reading of the same pixels, scaled and masked."""
    def clip(band):
        with rasterio.open(scenes.path(scene_id, band)) as src:
            out, transform = rasterio.mask.mask(src, [transform_geom("EPSG:4326", src.crs, aoi_geom.__geo_interface__)], crop=True)
            return out[0], transform, src.crs

    red, transform, crs = clip("B04")
    nir, _, _ = clip("B08")
    scl = np.zeros(red.shape, np.uint8)
    with rasterio.open(scenes.path(scene_id, "SCL")) as src:
        reproject(src.read(1), scl, src_transform=src.transform, src_crs=crs, dst_transform=transform, dst_crs=crs,
                  resampling=Resampling.nearest)
    r, n = red * 0.0001 - 0.1, nir * 0.0001 - 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        out = formula(r, n).astype(np.float32)
    outside = rasterio.features.geometry_mask([transform_geom("EPSG:4326", crs, aoi_geom.__geo_interface__)],
                                              out_shape=red.shape, transform=transform)
    out[outside | (red == 0) | (nir == 0) | scl_cloud_mask(scl) | ~np.isfinite(out)] = np.nan
    if unit_range:
        out[np.abs(out) > 1] = np.nan
    return out, transform


def test_one_partition_end_to_end(pipeline, instance, demo_scenes, scene_server):
    scene_server.reset_stats()
    result = materialize(COLLECTION, "2024-01-05", pipeline, instance)
    meta = result.asset_materializations_for_node("scene_collection")[0].metadata
    assert meta["scenes"].value == 1 and meta["requests"].value == 3  # one request per band header
    assert result.get_asset_check_evaluations()[0].passed

    scene_server.reset_stats()
    result = materialize(NDVI, ndvi_key("2024-01-05"), pipeline, instance)
    meta = result.asset_materializations_for_node("ndvi")[0].metadata
    assert meta["header_requests"].value == 0 and meta["rasters"].value == 1
    # the plan made before the read, from the stored headers, equals what the server then counted
    scene_server.wait_idle()
    assert meta["planned_requests"].value == meta["requests"].value == scene_server.stats.requests
    assert meta["planned_bytes"].value == meta["bytes_fetched"].value == scene_server.stats.bytes_sent
    assert "| requests |" in meta["plan"].value
    assert all(r.range and not r.range.startswith("bytes=0-") for r in scene_server.requests_for())
    assert "data:image/png;base64," in meta["preview"].value
    assert all(c.passed for c in result.get_asset_check_evaluations())

    (path,) = meta["outputs"].value
    aoi = load_aois(aoi_file())[FARM]
    want, transform = expected_ndvi(demo_scenes, "S2A_43PGQ_20240105_0_L2A", aoi)
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "float32" and src.crs.to_epsg() == 32643 and np.isnan(src.nodata)
        assert tuple(src.transform)[:6] == pytest.approx(tuple(transform)[:6])
        np.testing.assert_allclose(src.read(1), want, rtol=1e-6, equal_nan=True)

    table = read_stats(pipeline["storage"].stats_root)
    row = table[(table.aoi == FARM) & (table.date == "2024-01-05")].iloc[0]
    assert row["mean"] == pytest.approx(float(np.nanmean(want)), rel=1e-5)
    assert row["valid_fraction"] > 0.5


def test_the_ndvi_asset_writes_the_configured_index(pipeline, instance, demo_scenes):
    resources = {**pipeline, "stac": StacSource(source=pipeline["stac"].source, index="savi")}  # as typed
    materialize(COLLECTION, "2024-01-05", resources, instance)
    result = materialize(NDVI, ndvi_key("2024-01-05"), resources, instance)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("ndvi")[0].metadata
    assert "SAVI hesaraghatta_farm 2024-01-05" in meta["preview"].value
    (path,) = meta["outputs"].value
    # SAVI with the catalogue's default L = 1, on reflectance: written out by hand
    want, _ = expected_index(demo_scenes, "S2A_43PGQ_20240105_0_L2A", load_aois(aoi_file())[FARM],
                             lambda r, n: 2.0 * (n - r) / (n + r + 1.0))
    with rasterio.open(path) as src:
        tags = src.tags()
        assert src.descriptions == ("SAVI",) and tags["INDEX"] == "SAVI" and tags["FORMULA"] == "(1.0+L)*(N-R)/(N+R+L)"
        assert tags["CONSTANTS"] == "L=1" and tags["BANDS"] == "N=B08 R=B04 mask=SCL"
        np.testing.assert_allclose(src.read(1), want, rtol=1e-6, equal_nan=True)
    row = read_stats(pipeline["storage"].stats_root).iloc[0]
    assert row["median"] == pytest.approx(float(np.nanmedian(want)), rel=1e-5)


def test_backfill_of_dates_and_aois(pipeline, instance):
    job = defs.resolve_job_def("collection_job")
    run = job.execute_in_process(
        instance=instance, resources=pipeline,
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-16"},
    )
    meta = run.asset_materializations_for_node("scene_collection")[0].metadata
    assert meta["scenes"].value == 3  # 16 dates in one run, 13 of them explicitly empty
    for day in ("2024-01-05", "2024-01-10", "2024-01-15"):
        for aoi in ("bangalore_aoi1", FARM):
            materialize(NDVI, ndvi_key(day, aoi), pipeline, instance)
    table = read_stats(pipeline["storage"].stats_root)
    assert len(table) == 6 and set(table.date.dt.strftime("%Y-%m-%d")) == {"2024-01-05", "2024-01-10", "2024-01-15"}
    assert len(instance.get_materialized_partitions(dg.AssetKey("ndvi"))) == 6
    assert len(instance.get_materialized_partitions(dg.AssetKey("scene_collection"))) == 16


def test_a_date_without_scenes_is_an_explicit_empty_result(pipeline, instance):
    result = materialize(COLLECTION, "2024-01-02", pipeline, instance)
    assert result.asset_materializations_for_node("scene_collection")[0].metadata["scenes"].value == 0
    result = materialize(NDVI, ndvi_key("2024-01-02"), pipeline, instance)
    meta = result.asset_materializations_for_node("ndvi")[0].metadata
    assert meta["rasters"].value == 0 and "explicit empty result" in meta["note"].value
    (row,) = read_stats(pipeline["storage"].stats_root).itertuples()
    assert row.valid_pixels == 0 and len(row.scene_ids) == 0 and pd.isna(row.mean) and row.coverage == 0


def test_refresh_replaces_only_that_date(pipeline, instance, demo_scenes, tmp_path):
    for day in ("2024-01-05", "2024-01-10"):
        materialize(COLLECTION, day, pipeline, instance)
    collection = Collection.open(pipeline["storage"].collection_root)
    other = collection._partition_file(__import__("datetime").date(2024, 1, 10))
    before = open(other, "rb").read()
    items = copy.deepcopy(demo_scenes.items)
    items[0]["properties"]["eo:cloud_cover"] = 55.5
    write_items(tmp_path / "items.json", items)
    materialize(COLLECTION, "2024-01-05", pipeline, instance)
    assert [s.cloud_cover for s in collection.scenes(date_range=("2024-01-05", "2024-01-05"))] == [55.5]
    assert open(other, "rb").read() == before


def test_failing_check_blocks_downstream_and_names_the_values(pipeline, instance, demo_scenes, tmp_path):
    items = copy.deepcopy(demo_scenes.items)
    items[0]["properties"]["eo:cloud_cover"] = 150.0
    write_items(tmp_path / "items.json", items)
    # an absurd cloud cover is refused at the STAC boundary: a failure naming item and field
    result = materialize(COLLECTION, "2024-01-05", pipeline, instance)
    failures = result.asset_materializations_for_node("scene_collection")[0].metadata["failures"].value
    assert items[0]["id"] in failures and "eo:cloud_cover" in failures and "150" in failures
    # a partition written past the boundary (another writer) fails the check, which names the value
    materialize(COLLECTION, "2024-01-10", pipeline, instance)
    collection = Collection.open(pipeline["storage"].collection_root)
    scene = dataclasses.replace(collection.scenes(date_range=("2024-01-10", "2024-01-10"))[0], cloud_cover=150.0)
    collection.write_date(scene.datetime.date(), [scene])
    result = materialize(NDVI, ndvi_key("2024-01-10"), pipeline, instance, raise_on_error=False)
    assert not result.success and not result.asset_materializations_for_node("ndvi")
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "fails collection_schema" in str(failure.event_specific_data.error)


def test_bad_scenes_are_reported_while_the_others_succeed(pipeline, instance, demo_scenes, tmp_path, scene_server):
    items = copy.deepcopy(demo_scenes.items)
    good = items[0]
    missing = copy.deepcopy(good)
    missing["id"] = "S2B_43PGQ_20240105_1_L2A"
    missing["assets"]["red"]["href"] = f"s3://{BUCKET}/{PREFIX}/does-not-exist/B04.tif"
    truncated_dir = demo_scenes.folder / PREFIX / "truncated"
    truncated_dir.mkdir(exist_ok=True)
    data = demo_scenes.path(good["id"], "B08").read_bytes()
    (truncated_dir / "B08.tif").write_bytes(data[: len(data) // 3])
    cut = copy.deepcopy(good)
    cut["id"] = "S2B_43PGQ_20240105_2_L2A"
    cut["assets"]["nir"]["href"] = f"s3://{BUCKET}/{PREFIX}/truncated/B08.tif"
    write_items(tmp_path / "items.json", [good, missing, cut])
    result = materialize(COLLECTION, "2024-01-05", pipeline, instance)
    meta = result.asset_materializations_for_node("scene_collection")[0].metadata
    assert meta["scenes"].value == 3 and meta["failed_assets"].value == 2
    text = meta["failures"].value
    assert "does-not-exist" in text or "404" in text
    assert "truncated" in text.lower() or "past the end" in text
    result = materialize(NDVI, ndvi_key("2024-01-05"), pipeline, instance)
    meta = result.asset_materializations_for_node("ndvi")[0].metadata
    assert meta["rasters"].value == 1 and meta["failed_reads"].value == 2


def test_team_shared_storage_on_s3(pipeline, instance, moto_s3, aws_test_credentials):
    """Collection, NDVI rasters and statistics under an s3:// prefix (a private bucket)."""
    pipeline["storage"] = Storage(root=f"s3://{moto_s3.private_bucket}/team/rasteret", endpoint_url=moto_s3.endpoint_url)
    materialize(COLLECTION, "2024-01-05", pipeline, instance)
    result = materialize(NDVI, ndvi_key("2024-01-05"), pipeline, instance)
    meta = result.asset_materializations_for_node("ndvi")[0].metadata
    assert meta["rasters"].value == 1 and all(c.passed for c in result.get_asset_check_evaluations())
    keys = {o["Key"] for o in moto_s3.client().list_objects_v2(Bucket=moto_s3.private_bucket, Prefix="team/")["Contents"]}
    assert any(k.startswith("team/rasteret/collection/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith(f"team/rasteret/ndvi/{FARM}/2024-01-05/") and k.endswith(".tif") for k in keys)
    table = read_stats(pipeline["storage"].stats_root, pipeline["storage"].storage_options())
    assert list(table.aoi) == [FARM] and table.iloc[0]["valid_pixels"] > 0
