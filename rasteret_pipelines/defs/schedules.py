"""Daily refresh: yesterday's collection at 06:00 UTC (a lag for late STAC ingestion), then its NDVI."""

import dagster as dg

from rasteret_pipelines.defs.partitions import DATE_AOI, DATES

collection_job = dg.define_asset_job(
    "collection_job", selection=dg.AssetSelection.assets("scene_collection"), partitions_def=DATES,
    description="Search and harvest one date's scenes into the collection.",
)
ndvi_job = dg.define_asset_job(
    "ndvi_job", selection=dg.AssetSelection.assets("ndvi", "ndvi_stats"), partitions_def=DATE_AOI,
    description="NDVI rasters and statistics for one date and AOI.",
)

# The latest complete UTC day, six hours after it ends.
daily_collection = dg.build_schedule_from_partitioned_job(collection_job, hour_of_day=6, minute_of_hour=0)


@dg.schedule(job=ndvi_job, cron_schedule="30 7 * * *", execution_timezone="UTC")
def daily_ndvi(context: dg.ScheduleEvaluationContext):
    """One run per AOI for yesterday, after the collection refresh."""
    day = DATES.get_last_partition_key(current_time=context.scheduled_execution_time)
    if day is None:
        return dg.SkipReason("no complete date yet")
    for aoi in DATE_AOI.get_partitions_def_for_dimension("aoi").get_partition_keys():
        key = dg.MultiPartitionKey({"date": day, "aoi": aoi})
        yield dg.RunRequest(run_key=f"{day}|{aoi}", partition_key=key)
