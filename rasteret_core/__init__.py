"""rasteret: fast, cheap access to Cloud-Optimized GeoTIFF time series.

The library reads each COG header once, stores it with its STAC item in a GeoParquet
collection, and later fetches only the tiles an area of interest needs. The data flows
through the sub-packages in this order: ``stac`` (search) -> ``cog`` (headers) ->
``collection`` (GeoParquet per date) -> ``read`` (tile reads to xarray) -> ``ndvi``.
"""

from rasteret_core.api import Rasteret
from rasteret_core.collection import Collection, build_collection
from rasteret_core.errors import RasteretError
from rasteret_core.outputs import save_per_geometry
from rasteret_core.sources import DataSource, DataSources
from rasteret_core.workspace import list_collections, load_collection

__all__ = [
    "Rasteret",
    "save_per_geometry",
    "Collection",
    "DataSource",
    "DataSources",
    "RasteretError",
    "build_collection",
    "list_collections",
    "load_collection",
]
