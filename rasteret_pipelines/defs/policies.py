"""Shared operational policies: retries for transient failures, the S3-reading pool, backfills."""

import dagster as dg

# Transient failures (a STAC API or bucket throttling for minutes) get exponential backoff;
# per-asset failures inside a partition are recorded, not retried here.
RETRY = dg.RetryPolicy(max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Steps that read from object storage share one pool, limited in dagster.yaml.
S3_POOL = "s3_reads"

# A year of daily partitions backfills in 12 runs of at most 31 dates.
DAILY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)

# Date x AOI assets: a backfill (a rectangle of dates x AOIs) is one run, so each scene's tiles
# are read once for every AOI that needs them and process start-up is paid once, not per
# partition. (A multi-run policy chunks the flattened date x AOI keys, and a chunk that
# crosses an AOI boundary is not a rectangle, so it is not used for two dimensions.)
DATE_AOI_BACKFILL = dg.BackfillPolicy.single_run()
