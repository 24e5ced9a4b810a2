"""rasteret: fast, cheap access to Cloud-Optimized GeoTIFF time series.

The library reads each COG header once, stores it with its STAC item in a GeoParquet
collection, and later fetches only the tiles an area of interest needs. The data flows
through the sub-packages in this order: ``stac`` (search) -> ``cog`` (headers) ->
``collection`` (GeoParquet per date) -> ``read`` (tile reads to xarray) -> ``ndvi``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Exports load on first use, so `import rasteret_core.cog` stays light (no xarray/pandas).
_EXPORTS = {
    "Rasteret": "rasteret_core.api",
    "save_per_geometry": "rasteret_core.outputs",
    "Collection": "rasteret_core.collection",
    "build_collection": "rasteret_core.collection",
    "DataSource": "rasteret_core.sources",
    "DataSources": "rasteret_core.sources",
    "RasteretError": "rasteret_core.errors",
    "BuildError": "rasteret_core.collection",
    "CollectionExistsError": "rasteret_core.collection",
    "ReadError": "rasteret_core.read.diagnosis",
    "EmptyResultError": "rasteret_core.read.diagnosis",
    "ReadDiagnosis": "rasteret_core.read.diagnosis",
    "RasteretWarning": "rasteret_core.read.diagnosis",
    "EmptyResultWarning": "rasteret_core.read.diagnosis",
    "PartialReadWarning": "rasteret_core.read.diagnosis",
    "MissingBandWarning": "rasteret_core.read.diagnosis",
    "list_collections": "rasteret_core.workspace",
    "load_collection": "rasteret_core.workspace",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from rasteret_core.api import Rasteret
    from rasteret_core.collection import BuildError, Collection, CollectionExistsError, build_collection
    from rasteret_core.read.diagnosis import (
        EmptyResultError, EmptyResultWarning, MissingBandWarning, PartialReadWarning, RasteretWarning,
        ReadDiagnosis, ReadError,
    )
    from rasteret_core.errors import RasteretError
    from rasteret_core.outputs import save_per_geometry
    from rasteret_core.sources import DataSource, DataSources
    from rasteret_core.workspace import list_collections, load_collection


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rasteret_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
