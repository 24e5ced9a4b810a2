"""Automation in Dagster's declarative idiom, evaluated by the daemon's automation sensor.

- ``scene_collection`` refreshes the latest complete UTC day at 06:00 UTC (a lag for late STAC
  ingestion); re-running a date re-reads headers only for new or updated items.
- ``ndvi`` and ``ndvi_stats`` follow as soon as their upstream partition is updated (no fixed
  time gap), for every current AOI, in one run.
- Freshness: at ``FRESHNESS_DEADLINE_HOUR`` UTC, yesterday's collection and every AOI's NDVI
  for yesterday must exist, or the ``yesterday_present`` checks fail, naming what is missing.
  A yesterday outside the configured partitions (the demo's dates end in January 2024) passes
  with a note: nothing is due.
"""


import datetime as dt

import dagster as dg

from rasteret_pipelines import settings
from rasteret_pipelines.defs.partitions import AOIS, partition_key

COLLECTION_REFRESH_CRON = "0 6 * * *"
FRESHNESS_DEADLINE_HOUR = 9
FRESHNESS_CHECK = "yesterday_present"

COLLECTION_AUTOMATION = dg.AutomationCondition.on_cron(COLLECTION_REFRESH_CRON, cron_timezone="UTC")
# eager(): the latest date's partitions, once their upstream updated and none of it is missing
# or in progress (so a backfill that also runs NDVI is not duplicated).
NDVI_AUTOMATION = dg.AutomationCondition.eager()

automation = dg.AutomationConditionSensorDefinition(
    "rasteret_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.sensor_interval(),
    description="Evaluates the assets' automation conditions (collection on cron, NDVI after it).",
)


def freshness_day(now: dt.datetime, deadline_hour: int = FRESHNESS_DEADLINE_HOUR) -> str:
    """The date that must be present at ``now``: yesterday once today's deadline has passed,
    else the day before (whose deadline was yesterday)."""
    now = now.astimezone(dt.timezone.utc)
    lag = 1 if now.hour >= deadline_hour else 2
    return (now.date() - dt.timedelta(days=lag)).isoformat()


def missing_partitions(instance: dg.DagsterInstance, day: str) -> dict[str, list[str]]:
    """What is missing for ``day``: the collection partition and the AOIs without NDVI."""

    missing: dict[str, list[str]] = {}
    if day not in instance.get_materialized_partitions(dg.AssetKey("scene_collection")):
        missing["scene_collection"] = [day]
    done = instance.get_materialized_partitions(dg.AssetKey("ndvi"))
    aois = [a for a in instance.get_dynamic_partitions(AOIS.name) if partition_key(day, a) not in done]
    if aois:
        missing["ndvi"] = sorted(aois)
    return missing


def outside_partitions(day: str) -> str | None:
    """Why ``day`` has no partition to check (before RASTERET_START_DATE or after
    RASTERET_END_DATE, as in the demo, whose dates end in January 2024), else None."""
    start, end = settings.start_date(), settings.end_date()
    if day < start or (end is not None and day > end):
        return f"{day} is outside the configured partitions ({start} to {end or 'today'}): nothing is due"
    return None


def _freshness_result(instance: dg.DagsterInstance, asset: str, now: dt.datetime) -> dg.AssetCheckResult:
    day = freshness_day(now)
    outside = outside_partitions(day)
    if outside:  # a deployment over past dates (the demo) has no yesterday to miss
        return dg.AssetCheckResult(passed=True, metadata={"date": day, "note": outside}, description=outside)
    missing = missing_partitions(instance, day).get(asset, [])
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"date": day, "deadline": f"{FRESHNESS_DEADLINE_HOUR:02d}:00 UTC", "missing": dg.MetadataValue.json(missing)},
        description=f"{asset} for {day} missing at the {FRESHNESS_DEADLINE_HOUR:02d}:00 UTC deadline: {missing}" if missing
        else f"{asset} for {day} present",
    )


@dg.asset_check(asset="scene_collection", name=FRESHNESS_CHECK, blocking=False,
                description=f"yesterday's collection partition exists by {FRESHNESS_DEADLINE_HOUR:02d}:00 UTC")
def collection_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return _freshness_result(context.instance, "scene_collection", dt.datetime.now(dt.timezone.utc))


@dg.asset_check(asset="ndvi", name=FRESHNESS_CHECK, blocking=False,
                description=f"yesterday's NDVI exists for every AOI by {FRESHNESS_DEADLINE_HOUR:02d}:00 UTC")
def ndvi_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return _freshness_result(context.instance, "ndvi", dt.datetime.now(dt.timezone.utc))


freshness_job = dg.define_asset_job(
    "freshness_checks",
    selection=dg.AssetSelection.checks(collection_fresh, ndvi_fresh),
    description="Checks that yesterday's collection and NDVI exist (runs at the deadline).",
)
freshness_schedule = dg.ScheduleDefinition(
    name="freshness_at_deadline", job=freshness_job, cron_schedule=f"5 {FRESHNESS_DEADLINE_HOUR} * * *",
    execution_timezone="UTC",  # starts stopped, as every schedule of the project: turn it on in the UI
)
