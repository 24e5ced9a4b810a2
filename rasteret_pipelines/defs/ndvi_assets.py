"""``ndvi``: one partition = one date x one AOI; one NDVI COG (the day's scenes mosaicked), read with
zero header requests.

A run holds many partitions (a backfill is a few runs): each date's scenes are read once for
all the run's AOIs on that date, so AOIs on the same scene share tiles, and every partition
still gets its own materialisation metadata (what was read for it, what failed).
"""

from typing import Iterator

import dagster as dg
import pandas as pd

from rasteret_core.cog import ReadStats
from rasteret_core.collection import Collection
from rasteret_core.budget import peak_rss_mib
from rasteret_core.errors import ArgumentError
from rasteret_core.plan import ReadPlan
from rasteret_core.products.ndvi_dates import AoiNdvi, DateNdvi
from rasteret_core.products.ndvi_runs import ndvi_for_dates
from rasteret_pipelines.defs.automation import NDVI_AUTOMATION
from rasteret_pipelines.defs.checks import (
    all_reads_failed, COLLECTION_CHECK, collection_schema, failed_reads_check, NDVI_CHECK, ndvi_check_spec,
    NDVI_OUTPUT_SCHEMA, output_schema, run_check,
)
from rasteret_pipelines.defs.markdown import md_table, png_markdown
from rasteret_pipelines.defs.partitions import by_date, DATE_AOI, partition_key
from rasteret_pipelines.defs.policies import DATE_AOI_BACKFILL, RETRY, S3_POOL
from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage


@dg.asset(
    partitions_def=DATE_AOI,
    deps=["scene_collection"],
    backfill_policy=DATE_AOI_BACKFILL,
    automation_condition=NDVI_AUTOMATION,
    retry_policy=RETRY,
    pool=S3_POOL,
    check_specs=[ndvi_check_spec("ndvi")],
    kinds={"geotiff", "numpy"},
    group_name="ndvi",
    description="NDVI (float32 COG, NaN where masked) per AOI and date: the date's scenes mosaicked on one "
    "grid (least cloud first, first valid pixel wins), each scene's radiometry rule applied, clouds masked "
    "with Sentinel-2 SCL or Landsat QA_PIXEL.",
)
def ndvi(context: dg.AssetExecutionContext, stac: StacSource, reader: CogReader, storage: Storage, aois: Aois,
         dask: DaskCluster):
    source, shapes, jobs = stac.data_source(), aois.load(), by_date(context.partition_keys)
    collection = Collection.open(storage.collection_root, storage_options=storage.storage_options())
    for day in jobs:
        _require_valid_collection(collection, day, stac.read_bands())
    days: list[DateNdvi] = []
    with dask.client() as client:  # one task per date (its scenes read once for all its AOIs), here or on workers
        for result in _refusals_not_retried(ndvi_for_dates(
                jobs, shapes, collection_root=storage.collection_root, bands=stac.index_bands(),
                out_root=storage.ndvi_root, reader_options=reader.options(source),
                storage_options=storage.storage_options(), output_reader_options=storage.reader_options(),
                client=client)):
            for aoi, item in result.aois.items():
                if item.all_reads_failed:
                    raise all_reads_failed(f"{result.date} {aoi}", item.read_failures, reader.endpoint_url)
                context.add_asset_metadata(_partition_metadata(item, result.date, result.stats, len(result.aois),
                                                               stac.index_name()),
                                           partition_key=partition_key(result.date, aoi))
            context.log.info("%s: %d scenes read once for %d AOIs, %d failures, %d requests", result.date,
                             result.scenes, len(result.aois), len(result.failures), result.stats.requests)
            days.append(result)
    kept = [f"{d.date} {a.aoi}: {a.kept}" for d in days for a in d.aois.values() if a.kept]
    if kept:
        raise dg.Failure(
            description=f"the collection lost scenes that stored NDVI outputs were made from, for {len(kept)}"
                        f" date x AOI partition(s); the outputs were kept, not replaced: {'; '.join(kept[:10])}."
                        " Refresh the collection for those dates (or delete the outputs yourself if the scenes are"
                        " really gone)",
            allow_retries=False,  # the input vanished: retrying cannot bring it back
        )
    return _run_result(context, days, stac.index_name())


def _refusals_not_retried(results: Iterator[DateNdvi]) -> Iterator[DateNdvi]:
    """A configuration the library refuses (credentials for a Dask cluster, ...) fails the step
    once, naming the reason: retrying cannot change it."""
    try:
        yield from results
    except ArgumentError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _run_result(context: dg.AssetExecutionContext, days: list[DateNdvi], index: str) -> dg.MaterializeResult:
    """The whole run's figures and the output check; each partition's own are added as it goes."""
    rows = [row for d in days for a in d.aois.values() for row in a.outputs]
    failures = [row for d in days for a in d.aois.values() for row in a.failures]
    tile_failures = [row for d in days for row in d.tile_failures]
    warnings = [w for d in days for w in d.warnings]
    stats, plan = ReadStats(), ReadPlan("ndvi")
    for d in days:
        stats.add(d.stats)
        plan.add(d.plan)
    frame = pd.DataFrame(rows, columns=list(NDVI_OUTPUT_SCHEMA.columns))
    check = run_check(NDVI_CHECK, output_schema(index), frame)
    if tile_failures and check.passed:  # outputs missing for some scenes: block ndvi_stats, say why
        check = failed_reads_check(NDVI_CHECK, tile_failures, len(rows))
    if not rows and not failures and not warnings:
        # dates without scenes: say so per partition (above) and leave the run's figures out, so
        # the asset page's latest figures and plots are not replaced by zeros
        note = f"no scene with pixels in any of this run's {len(context.partition_keys)} date x AOI partitions"
        return dg.MaterializeResult(metadata={"run_partitions": len(context.partition_keys), "run_note": note,
                                              "run_peak_rss_mib": peak_rss_mib()}, check_results=[check])
    metadata = {
        "run_partitions": len(context.partition_keys),
        "run_rasters": len(rows),
        "run_requests": stats.requests,
        "run_header_requests": stats.header_requests,
        "run_bytes_fetched": stats.bytes_fetched,
        "run_tiles_from_cache": stats.tiles_from_cache,  # read from the machine's tile cache, no request
        "run_failed_reads": len(failures),
        "planned_requests": plan.requests,
        "planned_bytes": plan.bytes,
        "planned_price_usd": dg.MetadataValue.float(plan.price_usd),
        "plan": dg.MetadataValue.md(_plan_table(plan, stats)),
        "run_peak_rss_mib": peak_rss_mib(),  # the run process's, to size pods and workers
    }
    if warnings:
        metadata["radiometry_warnings"] = dg.MetadataValue.json(warnings[:20])
        for text in warnings:
            context.log.warning(text)
    if failures:
        metadata["run_failures"] = dg.MetadataValue.md(md_table(["scene", "band", "error"], failures))
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def _partition_metadata(item: AoiNdvi, day: str, day_stats: ReadStats, aois_on_date: int, index: str) -> dict:
    """One date x AOI partition's materialisation metadata: its outputs, failures and map; the
    date's reads, which it shares with the other AOIs of that date in the run."""
    rows = item.outputs
    meta: dict[str, object] = {
        "rasters": len(rows),
        "scene_ids": dg.MetadataValue.json(sorted({i for r in rows for i in r["scene_id"].split(",") if i})),
        "outputs": dg.MetadataValue.json([r["path"] for r in rows]),
        "failed_reads": len(item.failures),
        "requests": day_stats.requests,
        "header_requests": day_stats.header_requests,
        "bytes_fetched": day_stats.bytes_fetched,
        "tiles_from_cache": day_stats.tiles_from_cache,
        "aois_sharing_reads": aois_on_date,
        "dagster/row_count": len(rows),
    }
    if not rows:
        meta["note"] = "no scene with pixels in this AOI on this date: explicit empty result"
    if item.failures:
        meta["failures"] = dg.MetadataValue.md(md_table(["scene", "band", "error"], item.failures))
    if item.preview is not None:
        meta["preview"] = dg.MetadataValue.md(png_markdown(item.preview, f"{index} {item.aoi} {day}"))
    return meta


def _plan_table(plan: ReadPlan, stats: ReadStats) -> str:
    """The plan next to the read's own counts, as a markdown table."""
    rows = [f"| {name} | {planned:g} | {actual:g} |" for name, (planned, actual) in plan.compare(stats).items()]
    note = f"\n\nprices: AWS list prices of {plan.prices.as_of}, reader outside AWS"
    return "| figure | planned | read |\n| --- | --- | --- |\n" + "\n".join(rows) + note


def _require_valid_collection(collection: Collection, day: str, bands: list[str]) -> None:
    """Refuse to build on a collection partition that fails its schema check."""
    table = collection.read_table(date_range=(day, day)).drop_columns(["date"]).to_pandas()
    result = run_check(COLLECTION_CHECK, collection_schema(bands), table)
    if not result.passed:
        raise dg.Failure(
            description=f"the scene_collection partition {day} fails {COLLECTION_CHECK}; fix and refresh it first",
            metadata=dict(result.metadata),
            allow_retries=False,  # bad data is not transient: retrying would only delay the report
        )
