"""Pixel-grid rules, no I/O: the one home of what every read and load agrees on.

- :mod:`~rasteret_core.raster.grid`: output grids (CRS of largest overlap, native lattice,
  AOI crop, overview choice), masks inside geometries, nearest-neighbour resampling.
- :mod:`~rasteret_core.raster.nearest`: nearest-neighbour source pixels of an output grid,
  computed from the whole grid so chunks never change them (``load``).
- :mod:`~rasteret_core.raster.geometry`: AOIs as shapely geometries (names, checks,
  projection clipped to the target CRS's area of use).
- :mod:`~rasteret_core.raster.windows`: the pixel window of an AOI in a COG and its tiles.
- :mod:`~rasteret_core.raster.grouping`: time steps (solar day, time, a property) and the
  order in which scenes' pixels win.
- :mod:`~rasteret_core.raster.masks`: cloud masks (Sentinel-2 SCL, Landsat QA_PIXEL).
"""
