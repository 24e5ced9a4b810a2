"""The ``ndvi`` and ``ndvi_stats`` assets write one NDVI COG and one statistics row per date x AOI,
equal to the independent truth on the scenes derived from the real Sentinel-2 fixture."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest
import rasterio
from shapely.geometry import mapping

from rasteret_core.products.timeseries import read_stats
from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.partitions import sync_aois
from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage
from tests.ndvi import scenes as S

COLLECTION = [defs.get_assets_def("scene_collection")]
NDVI = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
# the pipeline's AOI partitions are the shipped names; these files give them the test geometries
NAMES = {"bangalore_aoi1": "swath", "bangalore_aoi2": "zone", "hesaraghatta_farm": "half_outside"}


def aoi_file(path, names):
    features = [{"type": "Feature", "properties": {"name": n}, "geometry": mapping(S.AOIS[a])} for n, a in names.items()]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


@pytest.fixture(scope="module")
def materialized(mosaic_scenes, tmp_path_factory):
    server, built, items = mosaic_scenes
    tmp = tmp_path_factory.mktemp("assets")
    resources = {
        "stac": StacSource(source=str(items)),
        "reader": CogReader(endpoint_url=server.endpoint_url, retries=1),
        "storage": Storage(root=str(tmp / "storage")),
        "aois": Aois(path=aoi_file(tmp / "aois.geojson", NAMES)),
        "dask": DaskCluster(),
    }
    with dg.instance_for_test() as instance:
        sync_aois(instance, NAMES)  # the aoi_source sensor's job in a deployment
        for day in (S.DAY1, S.DAY2):
            dg.materialize(COLLECTION, partition_key=day, resources=resources, instance=instance)
        runs = {}
        for day, name in [(S.DAY1, n) for n in NAMES] + [(S.DAY2, "bangalore_aoi1")]:
            key = dg.MultiPartitionKey({"date": day, "aoi": name})
            runs[(day, NAMES[name])] = dg.materialize(NDVI, partition_key=key, resources=resources, instance=instance)
        # its own partition (another date), so it does not replace an output checked above
        one = dict(resources, aois=Aois(path=aoi_file(tmp / "one.geojson", {"bangalore_aoi2": "one_pixel"})))
        key = dg.MultiPartitionKey({"date": S.DAY2, "aoi": "bangalore_aoi2"})
        runs[(S.DAY2, "one_pixel")] = dg.materialize(NDVI, partition_key=key, resources=one, instance=instance)
    return built, resources, runs


CASES = [(S.DAY1, "swath"), (S.DAY1, "zone"), (S.DAY1, "half_outside"), (S.DAY2, "swath"), (S.DAY2, "one_pixel")]


@pytest.mark.parametrize("day, aoi", CASES)
def test_one_ndvi_cog_and_one_stats_row_per_date_and_aoi_equal_the_truth(materialized, day, aoi):
    built, resources, runs = materialized
    run = runs[(day, aoi)]
    assert all(c.passed for c in run.get_asset_check_evaluations())
    meta = run.asset_materializations_for_node("ndvi")[0].metadata
    (path,) = meta["outputs"].value  # one COG for the date and AOI, whatever the number of tiles
    with rasterio.open(built[0].files["B04"]) as src:
        lattice = src.transform
    want = S.truth([s for s in built if s.item["properties"]["datetime"].startswith(day)], S.AOIS[aoi], 32629, lattice)
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata) and src.crs.to_epsg() == 32629
        assert tuple(src.transform)[:6] == pytest.approx(tuple(want["transform"])[:6])
        np.testing.assert_allclose(src.read(1), want["ndvi"], rtol=1e-6, equal_nan=True)

    name = next(n for n, a in NAMES.items() if a == aoi) if aoi != "one_pixel" else "bangalore_aoi2"
    stats_run = run.asset_materializations_for_node("ndvi_stats")[0].metadata
    assert stats_run["rows_written"].value == 1
    table = read_stats(resources["storage"].stats_root)
    rows = table[(table.aoi == name) & (table.date == day)]
    assert len(rows) == 1
    row = rows.iloc[0]
    valid = want["ndvi"][want["inside"] & np.isfinite(want["ndvi"])].astype(np.float64)
    aoi_pixels = want["aoi_pixels"]
    assert list(row["scene_ids"]) == want["scene_ids"]
    assert row["aoi_pixels"] == aoi_pixels and row["valid_pixels"] == valid.size
    assert row["valid_fraction"] == pytest.approx(valid.size / aoi_pixels)
    assert row["coverage"] == pytest.approx(want["covered"].sum() / aoi_pixels)
    for column, value in [("mean", valid.mean()), ("median", np.median(valid)), ("std", valid.std()),
                          ("min", valid.min()), ("max", valid.max()), ("p10", np.percentile(valid, 10)),
                          ("p90", np.percentile(valid, 90))]:
        assert row[column] == pytest.approx(value, rel=1e-6), column
