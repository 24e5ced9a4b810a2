"""Collections: STAC items plus their parsed COG headers, stored as GeoParquet per date."""

from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.collection.store import Collection, CollectionError, WriteResult
from rasteret_core.collection.harvest import AssetFailure, HarvestResult, aharvest, harvest
from rasteret_core.collection.build import BuildError, BuildReport, CollectionExistsError, build_collection, build_date

__all__ = [
    "BandAsset", "Scene", "Collection", "CollectionError", "WriteResult",
    "AssetFailure", "HarvestResult", "aharvest", "harvest",
    "BuildError", "BuildReport", "CollectionExistsError", "build_collection", "build_date",
]
