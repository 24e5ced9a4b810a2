"""rasteret: fast, cheap access to Cloud-Optimized GeoTIFF time series.

The library reads each COG header once, stores it with its STAC item in a GeoParquet
collection, and later fetches only the tiles an area of interest needs. The sub-packages
follow the data flow:

- ``stac`` finds items (STAC API search, items files, the named data sources);
- ``cog`` parses headers and reads tiles with range requests;
- ``collection`` stores items and headers as GeoParquet per date;
- ``raster`` holds the pixel-grid rules (grids, geometries, windows, grouping, cloud masks);
- ``read`` (eager reads to xarray, points) and ``load`` (the lazy, dask-backed datacube);
- ``plan``: what a read or a load will request and cost, before reading;
- ``products``: NDVI, statistics, time series, charts, outputs, AOIs;
- ``interop``: other tools' views of a collection (TorchGeo);
- ``workspace`` (named collections), ``api`` (the
  :class:`Rasteret` front door) and ``cli`` (the ``rasteret`` command).

Concerns with one home each: ``errors`` (every error and warning), ``redact``
(credential-free URLs), ``names`` (path-safe names), ``budget`` (the memory budget),
``radiometry`` (DN to physical values), ``storage`` (atomic writes, locked updates).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Exports load on first use, so `import rasteret_core.cog` stays light (no xarray/pandas).
_EXPORTS = {
    "Rasteret": "rasteret_core.api",
    "save_per_geometry": "rasteret_core.products.outputs",
    "Collection": "rasteret_core.collection",
    "build_collection": "rasteret_core.collection",
    "DataSource": "rasteret_core.stac.sources",
    "DataSources": "rasteret_core.stac.sources",
    "RasteretError": "rasteret_core.errors",
    "BuildError": "rasteret_core.errors",
    "CollectionExistsError": "rasteret_core.errors",
    "ReadError": "rasteret_core.errors",
    "EmptyResultError": "rasteret_core.errors",
    "ReadDiagnosis": "rasteret_core.read.diagnosis",
    "RasteretWarning": "rasteret_core.errors",
    "EmptyResultWarning": "rasteret_core.errors",
    "PartialReadWarning": "rasteret_core.errors",
    "MissingBandWarning": "rasteret_core.errors",
    "list_collections": "rasteret_core.workspace",
    "load_collection": "rasteret_core.workspace",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from rasteret_core.api import Rasteret
    from rasteret_core.collection import Collection, build_collection
    from rasteret_core.errors import (
        BuildError, CollectionExistsError, EmptyResultError, EmptyResultWarning, MissingBandWarning,
        PartialReadWarning, RasteretError, RasteretWarning, ReadError,
    )
    from rasteret_core.products.outputs import save_per_geometry
    from rasteret_core.read.diagnosis import ReadDiagnosis
    from rasteret_core.stac.sources import DataSource, DataSources
    from rasteret_core.workspace import list_collections, load_collection


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rasteret_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
