"""Collections: STAC items plus their parsed COG headers, stored as GeoParquet per date."""

from rasteret_core.collection.build import build_collection, build_date, BuildReport
from rasteret_core.collection.harvest import aharvest, AssetFailure, harvest, HarvestResult
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.collection.store import Collection, WriteResult
from rasteret_core.errors import BuildError, CollectionError, CollectionExistsError

__all__ = [
    "BandAsset", "Scene", "Collection", "CollectionError", "WriteResult",
    "AssetFailure", "HarvestResult", "aharvest", "harvest",
    "BuildError", "BuildReport", "CollectionExistsError", "build_collection", "build_date",
]
