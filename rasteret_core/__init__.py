"""rasteret: fast, cheap access to Cloud-Optimized GeoTIFF time series.

The library reads each COG header once, stores it, and later fetches only the tiles an
area of interest needs. ``rasteret_core.cog`` is the engine; higher layers build on it.
"""

from rasteret_core.errors import RasteretError

__all__ = ["RasteretError"]
