"""Deployment settings read from the environment, so ``dagster dev``, the daemon, the demo
and CI load the same definitions and only the environment differs.

| variable | meaning | default |
| --- | --- | --- |
| ``RASTERET_STAC_SOURCE`` | ``sentinel-2``, ``landsat``, ``landsat-earth-search`` or a local items file | ``sentinel-2`` (Earth Search) |
| ``RASTERET_STORAGE`` | folder or ``s3://bucket/prefix`` for collection, NDVI and stats | ``<workspace>/pipelines`` |
| ``RASTERET_AOIS`` | GeoJSON/GeoParquet of named AOIs | the shipped Bangalore AOIs |
| ``RASTERET_START_DATE`` | first daily partition | ``2024-01-01`` |
| ``RASTERET_END_DATE`` | last daily partition (inclusive) | none: up to yesterday, growing daily |
| ``AWS_ENDPOINT_URL`` | S3-compatible endpoint for s3:// reads and storage (the library and AWS tools read it too) | AWS |
| ``RASTERET_SENSOR_INTERVAL`` | seconds between AOI-source and automation evaluations | ``60`` |
| ``RASTERET_INDEX`` | the index the ``ndvi`` asset writes (a name of the Awesome Spectral Indices catalogue) | ``NDVI`` |
| ``RASTERET_TILE_CACHE`` | local folder where runs keep fetched COG tiles for the machine's other runs, or ``off`` | ``$DAGSTER_HOME/tile_cache``; off without ``DAGSTER_HOME`` |

``RASTERET_S3_ENDPOINT``, the pipelines' earlier name for the endpoint, still works and wins
over ``AWS_ENDPOINT_URL`` when both are set.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rasteret_core.cog import s3_endpoint_from_env
from rasteret_core.products.aois import load_aois
from rasteret_core.workspace import resolve_workspace

DEFAULT_AOIS = Path(__file__).parent / "data" / "aois_bangalore.geojson"


def stac_source() -> str:
    return os.environ.get("RASTERET_STAC_SOURCE", "sentinel-2")


def index_name() -> str:
    """The index the ``ndvi`` asset writes: NDVI, or any name of the Awesome Spectral Indices catalogue."""
    return os.environ.get("RASTERET_INDEX") or "NDVI"


def storage_root() -> str:
    return os.environ.get("RASTERET_STORAGE") or f"{resolve_workspace().rstrip('/')}/pipelines"


def aoi_file() -> str:
    return os.environ.get("RASTERET_AOIS") or str(DEFAULT_AOIS)


def start_date() -> str:
    return os.environ.get("RASTERET_START_DATE", "2024-01-01")


def end_date() -> str | None:
    """The last daily partition (inclusive), or ``None`` for partitions that grow every day."""
    return os.environ.get("RASTERET_END_DATE") or None


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint: ``RASTERET_S3_ENDPOINT``, else the standard
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` the library reads, else ``None`` (AWS)."""

    return os.environ.get("RASTERET_S3_ENDPOINT") or s3_endpoint_from_env()


def dask_address() -> str:
    """Where runs compute their dates: ``RASTERET_DASK_ADDRESS`` (a scheduler address such as
    ``tcp://dask-scheduler:8786``, or ``local`` for a LocalCluster per run), else in-process."""
    return os.environ.get("RASTERET_DASK_ADDRESS", "")


def tile_cache() -> str | None:
    """The folder runs share fetched COG tiles through (``RASTERET_TILE_CACHE``; ``off``: none).

    By default the instance's own ``$DAGSTER_HOME/tile_cache``: a backfill that Dagster splits
    into one run per AOI then fetches a date's tiles once for all its runs on the machine."""
    value = os.environ.get("RASTERET_TILE_CACHE", "").strip()
    if value.lower() in ("off", "none", "0", "false", "no"):
        return None
    return value or default_tile_cache()


def default_tile_cache() -> str | None:
    """``$DAGSTER_HOME/tile_cache``, or ``None`` without ``DAGSTER_HOME``."""
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "tile_cache") if home else None


def sensor_interval() -> int:
    return int(os.environ.get("RASTERET_SENSOR_INTERVAL", "60"))


@lru_cache(maxsize=8)
def aoi_names(path: str) -> tuple[str, ...]:
    """AOI names (partition keys) of an AOI file, read once per process."""
    return tuple(sorted(load_aois(path)))
