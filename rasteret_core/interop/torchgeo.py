"""A collection as a TorchGeo dataset: TorchGeo's samplers and DataLoader workers draw chips from
it, each read with range requests from the stored headers (no header request).

TorchGeo 0.10 (on the package registries) has no dataset that reads a rasteret collection, so
:class:`RasteretDataset` is a :class:`torchgeo.datasets.GeoDataset` of ours. Its ``index`` holds
one row per scene: the extent of the scene's first band in the dataset's CRS (the header's
own grid, not the STAC footprint, so a grid sampler lands on the image's pixels) and the
acquisition time as an interval. A chip is the :func:`~rasteret_core.load.load` of the scenes
under it onto the chip's grid (nearest neighbour, the first valid pixel of the least cloudy
scene winning), one channel per band. It needs Python 3.12 and ``pip install rasteret[torchgeo]``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch  # only this module needs torch and TorchGeo: pip install 'rasteret[torchgeo]' (Python 3.12+)
from affine import Affine
from geopandas import GeoDataFrame
from odc.geo.geobox import GeoBox
from pyproj import CRS, Transformer
from shapely.geometry import box
from shapely.ops import transform as transform_geometry
from torchgeo.datasets import GeoDataset

from rasteret_core.cog import ReaderOptions
from rasteret_core.errors import ArgumentError, OutsideDatasetError
from rasteret_core.load import load
from rasteret_core.types import Bands, band_list, DateRange



class RasteretDataset(GeoDataset):
    """The scenes of a collection (or scenes from one) as a TorchGeo ``GeoDataset``.

    Args:
        source: a :class:`~rasteret_core.collection.Collection`, or a list of its scenes.
        bands: band codes, one channel each, in this order.
        crs: the dataset's CRS (default: the first scene's).
        res: pixel size in CRS units (default: the first band's native pixel size).
        date_range: keep the scenes of these dates.
        reader_options: how tiles are fetched (endpoint, retries, ...); no credentials are
            needed in it: DataLoader workers sign with their own AWS chain.
        transforms: a function applied to each sample, as TorchGeo's datasets take.
        physical: reflectance (the stored radiometry rule) instead of stored values.
    """

    def __init__(self, source: Any, bands: Bands, *, crs: Any = None, res: float | None = None,
                 date_range: DateRange | None = None, reader_options: ReaderOptions | None = None,
                 transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 physical: bool = False) -> None:
        self.bands = band_list(bands)
        scenes = (source.scenes(date_range=date_range, bands=self.bands) if hasattr(source, "scenes")
                  else list(source))
        scenes = [s for s in scenes if all(s.bands.get(b) is not None and s.bands[b].header is not None
                                           for b in self.bands)]
        if not scenes:
            raise ArgumentError(f"no scene holds every band of {self.bands}")
        first = scenes[0].bands[self.bands[0]].header
        native = CRS.from_epsg(first.crs_epsg) if first.crs_epsg else CRS.from_wkt(first.crs_wkt)
        target = CRS.from_user_input(crs) if crs is not None else native
        self._scenes = scenes
        self._options = reader_options
        self._physical = physical
        self.transforms = transforms
        self._res = (float(res or abs(first.transform[0])),) * 2
        extents = [_extent(scene.bands[self.bands[0]].header, target) for scene in scenes]
        times = [pd.Timestamp(scene.datetime) for scene in scenes]
        index = pd.IntervalIndex.from_arrays(times, times, closed="both", name="datetime")
        self.index = GeoDataFrame({"scene": range(len(scenes))}, index=index, geometry=extents, crs=target)

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """The chip of a ``[xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres]`` slice:
        ``image`` (bands, height, width) float32, ``bounds`` and ``transform`` as TorchGeo gives them."""
        x, y, t = self._disambiguate_slice(query)
        # closed on both ends: a scene is an instant, and a query may be one too
        hits = self.index.iloc[self.index.index.overlaps(pd.Interval(t.start, t.stop, closed="both"))]
        hits = hits.iloc[:: t.step].cx[x.start:x.stop, y.start:y.stop]
        if hits.empty:
            raise OutsideDatasetError(f"query {query} is not in the dataset (bounds {self.bounds})")
        width = int(round((x.stop - x.start) / x.step))
        height = int(round((y.stop - y.start) / y.step))
        transform = Affine(x.step, 0, x.start, 0, -y.step, y.stop)
        geobox = GeoBox((height, width), transform, self.crs.to_wkt())
        scenes = [self._scenes[i] for i in hits["scene"]]
        ds = load(scenes, self.bands, geobox=geobox, groupby=None, chunks={"x": width, "y": height},
                  physical=self._physical, reader_options=self._options)
        chip = np.stack([ds[band].isel(time=0).values for band in self.bands]).astype(np.float32)
        sample = {"image": torch.from_numpy(chip), "bounds": self._slice_to_tensor(query),
                  "transform": torch.tensor(tuple(transform)[:6])}
        return self.transforms(sample) if self.transforms is not None else sample


def _extent(header: Any, crs: CRS):
    """The image's extent (its own grid) in ``crs``."""
    a, b, c, d, e, f = header.transform
    x0, x1 = sorted((c, c + a * header.width))
    y0, y1 = sorted((f, f + e * header.height))
    extent = box(x0, y0, x1, y1)
    own = CRS.from_epsg(header.crs_epsg) if header.crs_epsg else CRS.from_wkt(header.crs_wkt)
    if own == crs:
        return extent
    return transform_geometry(Transformer.from_crs(own, crs, always_xy=True).transform, extent)


__all__: Sequence[str] = ["RasteretDataset"]
