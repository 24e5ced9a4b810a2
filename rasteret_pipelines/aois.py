"""Register the AOI file's partitions without the daemon and without Python code.

    python -m rasteret_pipelines.aois sync              # RASTERET_AOIS, into $DAGSTER_HOME's instance
    python -m rasteret_pipelines.aois sync --aois fields.geojson --dry-run

Makes the ``aois`` dynamic partitions equal to the AOI file's names (what the ``aoi_source``
sensor does each tick), so a headless ``dagster asset materialize --partition "field|date"``
works right after adding a field. Exit status 0 when the partitions match the file, 1 with a
one-line reason when the file cannot be used.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from rasteret_core.errors import RasteretError
from rasteret_pipelines import settings
from rasteret_pipelines.defs.partitions import AOIS, sync_aois


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rasteret_pipelines.aois", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="make the aois partitions equal to the AOI file's names")
    sync.add_argument("--aois", default=None, help="the AOI file (default: $RASTERET_AOIS, else the demo's)")
    sync.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    args = parser.parse_args(argv)
    path = args.aois or settings.aoi_file()
    try:
        names = settings.aoi_names(path)
    except RasteretError as exc:
        print(f"rasteret aois: {exc}", file=sys.stderr)
        return 1
    with dg.DagsterInstance.get() as instance:
        if args.dry_run:
            known = set(instance.get_dynamic_partitions(AOIS.name))
            added, removed = sorted(set(names) - known), sorted(known - set(names))
        else:
            added, removed = sync_aois(instance, names)
    verb = "would add" if args.dry_run else "added"
    print(f"{len(names)} AOIs in {path}: {verb} {len(added)} ({', '.join(added[:10]) or '-'}),"
          f" {'would remove' if args.dry_run else 'removed'} {len(removed)} ({', '.join(removed[:10]) or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
