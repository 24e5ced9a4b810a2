"""Deployment settings read from the environment, so ``dagster dev``, the daemon, the demo
and CI load the same definitions and only the environment differs.

| variable | meaning | default |
| --- | --- | --- |
| ``RASTERET_STAC_SOURCE`` | ``sentinel-2``, ``landsat``, ``landsat-earth-search`` or a local items file | ``sentinel-2`` (Earth Search) |
| ``RASTERET_STORAGE`` | folder or ``s3://bucket/prefix`` for collection, NDVI and stats | ``<workspace>/pipelines`` |
| ``RASTERET_AOIS`` | GeoJSON/GeoParquet of named AOIs | the shipped Bangalore AOIs |
| ``RASTERET_START_DATE`` | first daily partition | ``2024-01-01`` |
| ``RASTERET_S3_ENDPOINT`` | S3-compatible endpoint for s3:// reads and storage | AWS |
| ``RASTERET_SENSOR_INTERVAL`` | seconds between AOI-source and automation evaluations | ``60`` |
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rasteret_core.aois import load_aois
from rasteret_core.workspace import resolve_workspace

DEFAULT_AOIS = Path(__file__).parent / "data" / "aois_bangalore.geojson"


def stac_source() -> str:
    return os.environ.get("RASTERET_STAC_SOURCE", "sentinel-2")


def storage_root() -> str:
    return os.environ.get("RASTERET_STORAGE") or f"{resolve_workspace().rstrip('/')}/pipelines"


def aoi_file() -> str:
    return os.environ.get("RASTERET_AOIS") or str(DEFAULT_AOIS)


def start_date() -> str:
    return os.environ.get("RASTERET_START_DATE", "2024-01-01")


def s3_endpoint() -> str | None:
    return os.environ.get("RASTERET_S3_ENDPOINT") or None


def sensor_interval() -> int:
    return int(os.environ.get("RASTERET_SENSOR_INTERVAL", "60"))


@lru_cache(maxsize=8)
def aoi_names(path: str) -> tuple[str, ...]:
    """AOI names (partition keys) of an AOI file, read once per process."""
    return tuple(sorted(load_aois(path)))
