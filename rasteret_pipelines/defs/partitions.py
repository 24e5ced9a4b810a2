"""Partitions: one per UTC date for collections, date x AOI for NDVI and statistics."""

import datetime as dt

import dagster as dg

from rasteret_pipelines import settings


def _end_exclusive() -> str | None:
    """Dagster's ``end_date`` excludes its day; ``RASTERET_END_DATE`` names the last one."""
    last = settings.end_date()
    return (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat() if last else None


DATES = dg.DailyPartitionsDefinition(start_date=settings.start_date(), end_date=_end_exclusive(), timezone="UTC")
AOIS = dg.StaticPartitionsDefinition(list(settings.aoi_names(settings.aoi_file())))
DATE_AOI = dg.MultiPartitionsDefinition({"date": DATES, "aoi": AOIS})
