"""Jobs for manual runs (CLI, launchpad). Refreshes run by automation conditions
(``automation.py``), AOI changes by the ``aoi_source`` sensor (``sensors.py``)."""

import dagster as dg

from rasteret_pipelines.defs.partitions import DATE_AOI, DATES

collection_job = dg.define_asset_job(
    "collection_job", selection=dg.AssetSelection.assets("scene_collection"), partitions_def=DATES,
    description="Search and harvest one date's scenes into the collection.",
)
ndvi_job = dg.define_asset_job(
    "ndvi_job", selection=dg.AssetSelection.assets("ndvi", "ndvi_stats"), partitions_def=DATE_AOI,
    description="NDVI rasters and statistics for dates x AOIs (a partition range is one run).",
)
