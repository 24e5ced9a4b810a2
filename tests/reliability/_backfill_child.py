"""A backfill in its own process, so its peak memory is its own: the collection for every date
in one run, then NDVI and statistics one run per date x AOI, as a UI backfill launches them.
Prints one JSON line per finished partition: {"done": n, "rss_mib": peak RSS so far}."""

import json
import resource
import sys

import dagster as dg

from rasteret_pipelines.defs.partitions import sync_aois

from rasteret_pipelines.settings import aoi_file, aoi_names

from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage


def main() -> None:
    args = json.loads(sys.argv[1])
    resources = {
        "stac": StacSource(source=args["items"]),
        "reader": CogReader(endpoint_url=args["endpoint"], max_concurrency=args["max_concurrency"]),
        "storage": Storage(root=args["storage"]),
        "aois": Aois(),
        "dask": DaskCluster(),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.instance_for_test() as instance:
        sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor's job in a deployment
        run = defs.resolve_job_def("collection_job").execute_in_process(
            instance=instance, resources=resources, run_config=quiet,
            tags={"dagster/asset_partition_range_start": args["dates"][0],
                  "dagster/asset_partition_range_end": args["dates"][-1]},
        )
        assert run.success
        ndvi = [defs.get_assets_def("ndvi"), defs.get_assets_def("ndvi_stats")]
        done = 0
        for day in args["dates"]:
            for aoi in args["aois"]:
                key = dg.MultiPartitionKey({"date": day, "aoi": aoi})
                result = dg.materialize(ndvi, partition_key=key, resources=resources, instance=instance, run_config=quiet)
                assert result.success
                done += 1
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(json.dumps({"done": done, "rss_mib": round(rss, 1)}), flush=True)


if __name__ == "__main__":
    main()
