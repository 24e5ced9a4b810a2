"""``ndvi``: one partition = one date x one AOI; one NDVI COG (the day's scenes mosaicked), read with
zero header requests.

A run holds many partitions (a backfill is a few runs): each date's scenes are read once for
all the run's AOIs on that date, so AOIs on the same scene share tiles, and every partition
still gets its own materialisation metadata (what was read for it, what failed).
"""

import dagster as dg
import numpy as np
import pandas as pd

from rasteret_core.cog import ReadStats
from rasteret_core.collection import Collection
from rasteret_core.plan import plan_aoi_read, ReadPlan
from rasteret_core.products.ndvi import aoi_ndvi
from rasteret_core.products.outputs import read_ndvi_sidecar, read_output, write_ndvi_output
from rasteret_core.storage import delete_missing, list_files
from rasteret_pipelines.defs.automation import NDVI_AUTOMATION
from rasteret_pipelines.defs.checks import (
    all_reads_failed, COLLECTION_CHECK, collection_schema, failed_reads_check, NDVI_CHECK, ndvi_check_spec,
    NDVI_OUTPUT_SCHEMA, run_check,
)
from rasteret_pipelines.defs.markdown import md_table, preview_markdown
from rasteret_pipelines.defs.partitions import by_date, DATE_AOI, date_aoi, partition_key
from rasteret_pipelines.defs.policies import DATE_AOI_BACKFILL, RETRY, S3_POOL
from rasteret_pipelines.defs.resources import Aois, CogReader, StacSource, Storage

partition_parts = date_aoi  # the name the statistics asset and older callers use


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
def ndvi(context: dg.AssetExecutionContext, stac: StacSource, reader: CogReader, storage: Storage, aois: Aois):
    source = stac.data_source()
    bands = stac.ndvi_bands()
    shapes = aois.load()
    collection = Collection.open(storage.collection_root, storage_options=storage.storage_options())
    stats = ReadStats()
    rows, failures, previews, warnings = [], [], [], []
    tile_failures: list[str] = []  # tile reads that failed now (harvest failures were reported by scene_collection)
    plan = ReadPlan("ndvi")
    kept_outputs: list[str] = []  # date x AOI whose input vanished while outputs are stored
    for day, names in by_date(context.partition_keys).items():
        _require_valid_collection(collection, day, list(bands.values()))
        scenes = collection.scenes(date_range=(day, day), bands=list(bands.values()))
        day_ids = {scene.id for scene in scenes}
        unknown = [a for a in names if a not in shapes]  # removed from the AOI source since requested
        known = {a: shapes[a] for a in names if a in shapes}
        # what this read will request and cost, from the stored headers, next to what it did
        if known:
            plan.add(plan_aoi_read(scenes, known, [bands["red"], bands["nir"], bands["mask"]],
                                   reader_options=reader.options(source)))
        day_stats = ReadStats()
        result = aoi_ndvi(  # one read of the date's scenes for all the run's AOIs on it
            scenes if known else [], known, red=bands["red"], nir=bands["nir"], mask=bands["mask"],
            mask_kind="scl" if bands["mask"] == "SCL" else "qa_pixel", reader_options=reader.options(source),
            stats=day_stats, groupby=None,  # the partition is the date: all its scenes make one mosaic
        )
        _add_stats(stats, day_stats)
        warnings += result.warnings
        failures += [(f.scene_id, f.band, f.error) for f in result.failures]
        tile_failures += [(f.scene_id, f.band, f.error) for f in result.failures if f.geometry_id]
        for aoi in names:
            mine = [f for f in result.failures if f.geometry_id in (aoi, None)]
            aoi_rasters = [r for r in result.rasters if r.geometry_id == aoi]
            if mine and not aoi_rasters:
                raise all_reads_failed(f"{day} {aoi}", mine, reader.endpoint_url)
            aoi_failures = [(f.scene_id, f.band, f.error) for f in mine]
            if aoi in unknown:
                aoi_failures.append(("-", "-", f"AOI {aoi!r} is not in the AOI source any more"))
                failures.append(aoi_failures[-1])
            folder = storage.path("ndvi", aoi, day)
            written, aoi_rows = [], []
            vanished = None if aoi in unknown else _vanished_inputs(folder, aoi_rasters, day_ids, storage)
            if vanished:
                # no green run deletes or thins outputs because an input vanished (an empty
                # search, a deleted date, pruned scenes): keep them, fail after the other partitions
                kept_outputs.append(f"{day} {aoi}: {vanished}")
                aoi_rasters = []
            for raster in aoi_rasters:  # at most one: the date x AOI mosaic
                path = write_ndvi_output(raster, folder, storage_options=storage.storage_options())
                written += [path, path[: -len(".tif")] + ".json"]
                aoi_rows.append(_describe_output(path, raster.scene_id, storage))
                previews.append(preview_markdown(raster, aoi, day))  # this partition's own map
            if aoi not in unknown and not vanished:
                delete_missing(folder, written, storage_options=storage.storage_options())  # a refresh replaces the date
            rows += aoi_rows
            preview = {"preview": dg.MetadataValue.md(previews[-1])} if aoi_rasters else {}
            context.add_asset_metadata(_partition_metadata(aoi_rows, aoi_failures, day_stats, len(names)) | preview,
                                       partition_key=partition_key(day, aoi))
        context.log.info("%s: %d scenes read once for %d AOIs, %d mosaic(s), %d failures, %d requests",
                         day, len(scenes), len(names), len(result.rasters), len(result.failures), day_stats.requests)

    if kept_outputs:
        raise dg.Failure(
            description=f"the collection lost scenes that stored NDVI outputs were made from, for {len(kept_outputs)}"
                        f" date x AOI partition(s); the outputs were kept, not replaced: {'; '.join(kept_outputs[:10])}."
                        " Refresh the collection for those dates (or delete the outputs yourself if the scenes are"
                        " really gone)",
            allow_retries=False,  # the input vanished: retrying cannot bring it back
        )
    frame = pd.DataFrame(rows, columns=list(NDVI_OUTPUT_SCHEMA.columns))
    check = run_check(NDVI_CHECK, NDVI_OUTPUT_SCHEMA, frame)
    if tile_failures and check.passed:  # outputs missing for some scenes: block ndvi_stats, say why
        check = failed_reads_check(NDVI_CHECK, tile_failures, len(rows))
    metadata = {  # the whole run's figures; each partition's own are added above
        "run_partitions": len(context.partition_keys),
        "run_rasters": len(rows),
        "run_requests": stats.requests,
        "run_header_requests": stats.header_requests,
        "run_bytes_fetched": stats.bytes_fetched,
        "run_failed_reads": len(failures),
        "planned_requests": plan.requests,
        "planned_bytes": plan.bytes,
        "planned_price_usd": dg.MetadataValue.float(plan.price_usd),
        "plan": dg.MetadataValue.md(_plan_table(plan, stats)),
    }
    if warnings:
        metadata["radiometry_warnings"] = dg.MetadataValue.json(warnings[:20])
        for text in warnings:
            context.log.warning(text)
    if failures:
        metadata["run_failures"] = dg.MetadataValue.md(md_table(["scene", "band", "error"], failures))
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def _partition_metadata(rows: list[dict], failures: list[tuple[str, str, str]], day_stats: ReadStats,
                        aois_on_date: int) -> dict:
    """One date x AOI partition's materialisation metadata: its outputs and failures; the
    date's reads, which it shares with the other AOIs of that date in the run."""
    meta: dict[str, object] = {
        "rasters": len(rows),
        "scene_ids": dg.MetadataValue.json(sorted({i for r in rows for i in r["scene_id"].split(",") if i})),
        "outputs": dg.MetadataValue.json([r["path"] for r in rows]),
        "failed_reads": len(failures),
        "requests": day_stats.requests,
        "header_requests": day_stats.header_requests,
        "bytes_fetched": day_stats.bytes_fetched,
        "aois_sharing_reads": aois_on_date,
        "dagster/row_count": len(rows),
    }
    if not rows:
        meta["note"] = "no scene with pixels in this AOI on this date: explicit empty result"
    if failures:
        meta["failures"] = dg.MetadataValue.md(md_table(["scene", "band", "error"], failures))
    return meta


def _vanished_inputs(folder: str, rasters: list, day_ids: set[str], storage: Storage) -> str | None:
    """Why the stored outputs of ``folder`` must be kept rather than replaced by ``rasters``, or
    None: the date's collection partition is empty or gone while outputs exist, or it no longer
    holds scenes the stored mosaic was made from (its sidecar names them)."""
    options = storage.storage_options()
    stored = list_files(folder, suffix=".tif", storage_options=options)
    if not stored:
        return None
    used = (read_ndvi_sidecar(folder, storage_options=options) or {}).get("scene_ids") or []
    gone = sorted({str(i) for i in used} - day_ids)
    if gone:
        return (f"{len(stored)} output(s) kept, made from {len(used)} scene(s) of which {len(gone)} the collection"
                f" no longer holds ({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''})")
    if not rasters and not day_ids:
        return f"{len(stored)} output(s) kept; the collection holds no scene on this date"
    return None


def _add_stats(total: ReadStats, part: ReadStats) -> None:
    for name, value in part.as_dict().items():
        setattr(total, name, getattr(total, name) + value)


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


def _describe_output(path: str, scene_id: str, storage: Storage) -> dict:
    """Re-read a written NDVI COG through the core reader, as any consumer would."""
    header, values = read_output(path, **storage.reader_options())
    finite = values[np.isfinite(values)]
    return {
        "path": path, "scene_id": scene_id, "dtype": header.dtype.name,
        "crs": f"EPSG:{header.crs_epsg}" if header.crs_epsg else "",
        "pixel_width": float(header.transform[0]), "pixel_height": float(header.transform[4]),
        "nodata_is_nan": header.nodata is not None and bool(np.isnan(header.nodata)),
        "min": float(finite.min()) if finite.size else None, "max": float(finite.max()) if finite.size else None,
    }
