"""``scene_collection``: one daily partition = STAC search over the AOIs + header harvest."""

import dagster as dg

from rasteret_core.collection import BuildError, Collection, build_date
from rasteret_pipelines.defs.automation import COLLECTION_AUTOMATION
from rasteret_pipelines.defs.checks import (
    COLLECTION_CHECK,
    build_failed,
    collection_check_spec,
    collection_schema,
    run_check,
)
from rasteret_pipelines.defs.markdown import md_table
from rasteret_pipelines.defs.partitions import DATES
from rasteret_pipelines.defs.policies import DAILY_BACKFILL, RETRY, S3_POOL
from rasteret_pipelines.defs.resources import Aois, CogReader, StacSource, Storage


@dg.asset(
    partitions_def=DATES,
    backfill_policy=DAILY_BACKFILL,
    automation_condition=COLLECTION_AUTOMATION,
    retry_policy=RETRY,
    pool=S3_POOL,
    check_specs=[collection_check_spec("scene_collection")],
    kinds={"stac", "geoparquet"},
    group_name="collections",
    description="STAC items over the AOIs for one UTC date with each band's parsed COG header, "
    "written atomically as that date's GeoParquet partition (a refresh replaces only that date).",
)
def scene_collection(
    context: dg.AssetExecutionContext, stac: StacSource, reader: CogReader, storage: Storage, aois: Aois
) -> dg.MaterializeResult:
    source = stac.data_source()
    bands = stac.harvest_bands()
    bbox = aois.bounds()
    scenes: list[str] = []
    failures: list[str] = []
    messages: list[str] = []
    requests = bytes_fetched = reused = 0
    per_date: list[dict[str, object]] = []
    for day in context.partition_keys:
        try:
            report = build_date(
                source, day, root=storage.collection_root, bbox=bbox, bands=bands,
                reader_options=reader.options(source), progress=False, name="scene_collection",
                storage_options=storage.storage_options(),
            )
        except BuildError as err:  # items found, no header readable: nothing written for this date
            raise build_failed(day, err, reader.endpoint_url) from err
        context.log.info("%s: %s", day, report.message)
        messages.append(f"{day}: {report.message}")
        day_failures = [(f.item_id, f.band, f.error) for f in report.failures]
        failures += day_failures
        requests += report.stats.requests
        bytes_fetched += report.stats.bytes_fetched
        reused += report.reused
        day_scenes = _scene_ids(report.collection, day)
        scenes += day_scenes
        per_date.append({"date": day, "scenes": len(day_scenes), "scene_ids": day_scenes,
                         "failed_assets": len(day_failures), "requests": report.stats.requests,
                         "summary": report.message})
    if len(per_date) > 1:
        # Dagster gives every partition of a multi-partition run the same materialization
        # metadata (dagster-io/dagster#18123); each date's own figures go in an observation of
        # that partition, and a per-date table in the run's metadata.
        for entry in per_date:
            context.log_event(dg.AssetObservation(
                asset_key=context.asset_key, partition=str(entry["date"]),
                metadata={"scenes": entry["scenes"], "scene_ids": dg.MetadataValue.json(entry["scene_ids"]),
                          "failed_assets": entry["failed_assets"], "requests": entry["requests"],
                          "summary": entry["summary"]},
            ))

    collection = Collection.open(storage.collection_root, storage_options=storage.storage_options())
    table = collection.read_table(date_range=(min(context.partition_keys), max(context.partition_keys)))
    check = run_check(COLLECTION_CHECK, collection_schema(bands), table.drop_columns(["date"]).to_pandas())
    metadata: dict[str, object] = {
        "dates": len(per_date),
        "scenes": len(scenes),
        "scene_ids": dg.MetadataValue.json(scenes),
        "failed_assets": len(failures),
        "requests": requests,
        "bytes_fetched": bytes_fetched,
        "requests_per_scene": round(requests / len(scenes), 2) if scenes else 0.0,
        "scenes_reused": reused,  # unchanged items (same STAC `updated`): no header requests
        "collection_root": dg.MetadataValue.path(storage.collection_root),
        "summary": "\n".join(messages),
        "dagster/row_count": len(scenes),
    }
    if len(per_date) > 1:
        metadata["per_date"] = dg.MetadataValue.md(
            "figures of the whole run above; per date (also in each partition's observation):\n\n"
            + md_table(["date", "scenes", "scene ids", "failed assets", "requests"],
                       [(e["date"], e["scenes"], ", ".join(e["scene_ids"]) or "-", e["failed_assets"], e["requests"])
                        for e in per_date], max_cell=2000))
    if failures:
        metadata["failures"] = dg.MetadataValue.md(md_table(["scene", "band", "error"], failures))
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def _scene_ids(collection: Collection, day: str) -> list[str]:
    return [s.id for s in collection.scenes(date_range=(day, day))]
