"""Partitions: one per UTC date for collections, date x AOI for NDVI and statistics."""

import dagster as dg

from rasteret_pipelines import settings

DATES = dg.DailyPartitionsDefinition(start_date=settings.start_date(), timezone="UTC")
AOIS = dg.StaticPartitionsDefinition(list(settings.aoi_names(settings.aoi_file())))
DATE_AOI = dg.MultiPartitionsDefinition({"date": DATES, "aoi": AOIS})
