"""``aoi_source``: keeps the ``aois`` partitions equal to the AOI source and backfills new or changed AOIs.

The AOI source is the file named by ``RASTERET_AOIS`` (GeoJSON or GeoParquet, local or on the
team storage), re-read on every tick, so a team adds a field by adding a named polygon to it.
New AOIs become partitions and get NDVI and statistics for every date the collection holds (one
run); an AOI whose polygon changed (compared by a fingerprint of its geometry, kept in the
sensor's cursor) gets its partitions requested again, tagged with the reason; removed AOIs are
deleted from the partition set, so nothing schedules them any more, while their stored outputs
and materialisation history stay.
"""

import json


import dagster as dg

from rasteret_core.products.aois import geometry_fingerprint
from rasteret_pipelines import settings
from rasteret_pipelines.defs.partitions import add_aois, AOIS
from rasteret_pipelines.defs.resources import Aois

ASSET_PARTITION_RANGE_START = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END = "dagster/asset_partition_range_end"


@dg.sensor(
    name="aoi_source",
    target=dg.AssetSelection.assets("ndvi", "ndvi_stats"),
    minimum_interval_seconds=settings.sensor_interval(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds the AOI source's new AOIs as partitions (and backfills them), removes deleted ones.",
)
def aoi_source(context: dg.SensorEvaluationContext, aois: Aois) -> dg.SensorResult | dg.SkipReason:
    shapes = aois.load()  # validated names: an unreadable source fails the tick, loudly
    current = sorted(shapes)
    known = context.instance.get_dynamic_partitions(AOIS.name)
    added = [a for a in current if a not in set(known)]
    removed = [a for a in known if a not in set(current)]
    fingerprints = {name: geometry_fingerprint(shapes[name]) for name in current}
    before = _cursor_fingerprints(context.cursor)
    changed = [a for a in current if a in before and a not in added and before[a] != fingerprints[a]]
    cursor = json.dumps({"fingerprints": fingerprints}, sort_keys=True)
    if not added and not removed and not changed:
        if cursor != context.cursor:
            return dg.SensorResult(cursor=cursor)  # first tick: remember the shapes
        return dg.SkipReason(f"{len(current)} AOIs, unchanged")
    requests: list[dg.RunRequest] = []
    dates = sorted(context.instance.get_materialized_partitions(dg.AssetKey("scene_collection")))
    # an AOI whose polygon moved: its NDVI and statistics are recomputed on the new shape
    for aoi in changed:
        for first, last in consecutive(dates):
            requests.append(dg.RunRequest(
                run_key=f"aoi-changed:{aoi}:{fingerprints[aoi]}:{first}:{last}",
                asset_selection=[dg.AssetKey("ndvi"), dg.AssetKey("ndvi_stats")],
                tags={
                    ASSET_PARTITION_RANGE_START: str(dg.MultiPartitionKey({"date": first, "aoi": aoi})),
                    ASSET_PARTITION_RANGE_END: str(dg.MultiPartitionKey({"date": last, "aoi": aoi})),
                    "rasteret/aoi_changed": aoi,
                    "rasteret/reason": f"the polygon of AOI {aoi!r} changed in the AOI source",
                },
            ))
    # new keys are appended to the dynamic set in this order, so they are one contiguous range;
    # per stretch of consecutive collection dates, one run of (new AOIs x those dates)
    for first, last in (consecutive(dates) if added else []):
        requests.append(dg.RunRequest(
            run_key=f"aois-added:{','.join(added)}:{first}:{last}",
            asset_selection=[dg.AssetKey("ndvi"), dg.AssetKey("ndvi_stats")],
            tags={
                ASSET_PARTITION_RANGE_START: str(dg.MultiPartitionKey({"date": first, "aoi": added[0]})),
                ASSET_PARTITION_RANGE_END: str(dg.MultiPartitionKey({"date": last, "aoi": added[-1]})),
                "rasteret/aois_added": ",".join(added),
                "rasteret/reason": f"{len(added)} new AOI(s) in the AOI source",
            },
        ))
    context.log.info("AOIs added: %s; changed: %s; removed: %s; backfilling %d dates in %d runs", added, changed,
                     removed, len(dates) if added or changed else 0, len(requests))
    # registered here, tolerating a concurrent run, sensor or script adding the same keys (the
    # daemon's own handling of the request below is a check then an add, which can race); the
    # request stays so the tick shows what was added
    add_aois(context.instance, added)
    return dg.SensorResult(
        run_requests=requests,
        cursor=cursor,
        dynamic_partitions_requests=[
            *([AOIS.build_add_request(added)] if added else []),
            *([AOIS.build_delete_request(removed)] if removed else []),
        ],
    )


def _cursor_fingerprints(cursor: str | None) -> dict[str, str]:
    """The AOI fingerprints of the last tick (an old or foreign cursor: none known)."""
    try:
        value = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    prints = value.get("fingerprints") if isinstance(value, dict) else None
    return {str(k): str(v) for k, v in prints.items()} if isinstance(prints, dict) else {}


def consecutive(days: list[str]) -> list[tuple[str, str]]:
    """Sorted ISO dates as (first, last) stretches of consecutive days."""
    import datetime as dt

    stretches: list[tuple[str, str]] = []
    for day in days:
        if stretches and dt.date.fromisoformat(day) - dt.date.fromisoformat(stretches[-1][1]) == dt.timedelta(days=1):
            stretches[-1] = (stretches[-1][0], day)
        else:
            stretches.append((day, day))
    return stretches
