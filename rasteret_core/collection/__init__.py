"""Collections: STAC items plus their parsed COG headers, stored as GeoParquet per date."""

from rasteret_core.collection.build import build_collection, build_date, BuildReport
from rasteret_core.collection.harvest import (
    aharvest, AssetFailure, collection_reader_options, harvest, HarvestResult, source_reader_options,
)
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.collection.store import Collection, WriteResult
from rasteret_core.errors import BuildError, CollectionError, CollectionExistsError

__all__ = [
    "BandAsset", "Scene", "Collection", "CollectionError", "WriteResult",
    "AssetFailure", "HarvestResult", "aharvest", "harvest", "collection_reader_options", "source_reader_options",
    "BuildError", "BuildReport", "CollectionExistsError", "build_collection", "build_date",
]
