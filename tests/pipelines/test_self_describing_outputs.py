"""NDVI COGs describe themselves: a band description, the index and its formula, the date, the
AOI, the scenes, the source and the radiometry rule as tags; and they are valid COGs."""

from __future__ import annotations

import dagster as dg
import pytest
import rasterio

from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.partitions import partition_key

cogeo = pytest.importorskip("rio_cogeo.cogeo")


def test_an_ndvi_cog_names_its_band_date_aoi_scenes_and_rule_and_validates(pipeline, instance, tmp_path):
    day, aoi = "2024-01-05", "hesaraghatta_farm"
    assert dg.materialize([defs.get_assets_def("scene_collection")], partition_key=day, resources=pipeline,
                          instance=instance).success
    assert dg.materialize([defs.get_assets_def("ndvi")], partition_key=partition_key(day, aoi), resources=pipeline,
                          instance=instance).success
    (path,) = (tmp_path / "storage" / "ndvi" / aoi / day).glob("*.tif")
    with rasterio.open(path) as src:
        tags = src.tags()
        assert src.descriptions == ("NDVI",)
    assert tags["INDEX"] == "NDVI" and tags["FORMULA"] == "(N - R) / (N + R)"
    assert tags["DATE"] == day and tags["AOI"] == aoi and tags["SCENES"] == "S2A_43PGQ_20240105_0_L2A"
    assert tags["BANDS"] == "red=B04 nir=B08 mask=SCL" and tags["SOURCE"]
    assert "B04 " in tags["RADIOMETRY"] and "B08 " in tags["RADIOMETRY"]  # the rule decided at harvest
    valid, errors, _warnings = cogeo.cog_validate(str(path))
    assert valid, errors
