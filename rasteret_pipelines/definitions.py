"""The code location: every Dagster object under ``rasteret_pipelines/defs/``.

Runs execute their steps in the run's own process (``in_process_executor``): a run holds many
partitions and its steps are sequential (NDVI, then its statistics), so a subprocess per step
would only add start-up time (seconds per step) without parallelism.
"""

from pathlib import Path

import dagster as dg

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent / "defs"),
    dg.Definitions(executor=dg.in_process_executor),
)
