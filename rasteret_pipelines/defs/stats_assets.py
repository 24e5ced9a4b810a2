"""``ndvi_stats``: the team-shared time series, per-AOI and per-date NDVI statistics."""

import dagster as dg
import pandas as pd

from rasteret_core.products.ndvi_dates import ndvi_folder
from rasteret_core.products.timeseries import empty_row, output_statistics, read_stats, write_stats
from rasteret_pipelines.defs.automation import NDVI_AUTOMATION
from rasteret_pipelines.defs.checks import run_check, STATS_CHECK, stats_check_spec, stats_schema
from rasteret_pipelines.defs.markdown import md_table
from rasteret_pipelines.defs.partitions import DATE_AOI, date_aoi, partition_key
from rasteret_pipelines.defs.policies import DATE_AOI_BACKFILL, RETRY
from rasteret_pipelines.defs.resources import Aois, StacSource, Storage


@dg.asset(
    partitions_def=DATE_AOI,
    deps=["ndvi"],
    backfill_policy=DATE_AOI_BACKFILL,  # same as ndvi: a backfill runs both in the same run
    automation_condition=NDVI_AUTOMATION,
    retry_policy=RETRY,
    check_specs=[stats_check_spec("ndvi_stats")],
    kinds={"geoparquet"},
    group_name="ndvi",
    description="One row per AOI and date: scenes used, coverage and valid fraction of the AOI's pixels, "
    "NDVI mean, median, std, min, max, p10, p90; one GeoParquet file per date and AOI (written "
    "atomically), read together as one table.",
)
def ndvi_stats(context: dg.AssetExecutionContext, storage: Storage, aois: Aois, stac: StacSource) -> dg.MaterializeResult:
    shapes = aois.load()
    written, all_rows = [], []
    kept: list[str] = []  # date x AOI whose NDVI outputs vanished while good statistics are stored
    stored = _StoredStats(storage)
    for key in context.partition_keys:
        day, aoi = date_aoi(key)
        if aoi not in shapes:
            raise dg.Failure(f"AOI {aoi!r} ({day}) is not in the AOI source any more: nothing to summarise",
                             allow_retries=False)
        rows = output_statistics(ndvi_folder(storage.ndvi_root, aoi, day), shapes[aoi],
                                 reader_options=storage.reader_options(), storage_options=storage.storage_options())
        if not rows and (scenes := stored.scenes(day, aoi)) and not _ndvi_found_nothing(context, key):
            # the NDVI outputs are gone but NDVI never said the date has nothing for this AOI:
            # an input vanished, so the stored statistics stay rather than become an empty row
            kept.append(f"{day} {aoi} (statistics of {scenes} scene(s) kept)")
            continue
        written.append(write_stats(rows, storage.stats_root, date=day, aoi=aoi, geometry=shapes[aoi],
                                   storage_options=storage.storage_options()))
        context.add_asset_metadata(_partition_metadata(rows, written[-1], aoi), partition_key=partition_key(day, aoi))
        all_rows += [{"aoi": aoi, "date": day, **r} for r in rows] or [{"aoi": aoi, "date": day, **empty_row()}]
    if kept:
        raise dg.Failure(
            description=f"the NDVI outputs of {len(kept)} date x AOI partition(s) with stored statistics are gone;"
                        f" the statistics were kept, not replaced by empty rows: {', '.join(kept[:10])}. Rebuild"
                        " their NDVI first (refreshing the collection if its scenes vanished)",
            allow_retries=False,  # the outputs will not come back by retrying
        )
    frame = pd.DataFrame(all_rows)
    check = run_check(STATS_CHECK, stats_schema(stac.index_name()), frame)
    table = read_stats(storage.stats_root, storage.storage_options())
    recent = table.drop(columns=["geometry"]).tail(10)
    return dg.MaterializeResult(
        metadata={  # the run's figures; each partition's own row is added above
            "rows_written": len(frame),
            "table_rows": len(table),
            "dagster/row_count": len(table),
            "files": dg.MetadataValue.json(written),
            "stats_root": dg.MetadataValue.path(storage.stats_root),
            "latest": dg.MetadataValue.md(_markdown(recent)),
        },
        check_results=[check],
    )


class _StoredStats:
    """The statistics already stored, read once and only when a partition needs them."""

    def __init__(self, storage: Storage):
        self._storage, self._table = storage, None

    def scenes(self, day: str, aoi: str) -> int:
        """How many scenes the stored statistics of (``day``, ``aoi``) were computed from."""
        if self._table is None:
            self._table = read_stats(self._storage.stats_root, self._storage.storage_options())
        table = self._table
        rows = table[(table["date"] == day) & (table["aoi"] == aoi)] if len(table) else table
        return sum(len(ids) for ids in rows["scene_ids"] if ids is not None) if len(rows) else 0


def _ndvi_found_nothing(context: dg.AssetExecutionContext, key: str) -> bool:
    """Whether the latest NDVI materialisation of partition ``key`` recorded an explicit empty
    result (no scene with pixels in the AOI), the one case where outputs go away on purpose."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("ndvi"), asset_partitions=[key]), limit=1).records
    if not records or records[0].asset_materialization is None:
        return False
    rasters = records[0].asset_materialization.metadata.get("rasters")
    return rasters is not None and rasters.value == 0


def _partition_metadata(rows: list[dict], path: str, aoi: str) -> dict:
    """One date x AOI partition's statistics, as its materialisation metadata. The UI's Plots tab
    draws each numeric label over the partition keys (sorted aoi|date), so the NDVI values are
    labelled per AOI: each plot is then one AOI's dates, never a line from one field to another
    (the charts themselves are on ``ndvi_timeseries``)."""
    row = rows[0] if rows else {}
    return {
        "scenes": len(row.get("scene_ids") or []),
        "file": dg.MetadataValue.path(path),
        f"median NDVI {aoi}": row.get("median"),
        f"valid fraction {aoi}": row.get("valid_fraction", 0.0),
    }


def _markdown(frame) -> str:
    if frame.empty:
        return "empty"
    rows = [["" if v is None else f"{v:.4g}" if isinstance(v, float) else v for v in row]
            for row in frame.itertuples(index=False)]
    return md_table(frame.columns, rows)
