"""Collections: STAC items plus their parsed COG headers, stored as GeoParquet per date."""

from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.collection.store import Collection, CollectionError, WriteResult

__all__ = ["BandAsset", "Scene", "Collection", "CollectionError", "WriteResult"]
