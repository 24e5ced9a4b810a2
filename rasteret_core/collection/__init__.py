"""Collections: STAC items plus their parsed COG headers, stored as GeoParquet per date."""

from rasteret_core.collection.scene import BandAsset, Scene

__all__ = ["BandAsset", "Scene"]
