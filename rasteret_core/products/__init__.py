"""What users keep: NDVI per AOI and date, its statistics and time series, charts, outputs.

- :mod:`~rasteret_core.products.ndvi`: NDVI with cloud masks, per AOI and time step.
- :mod:`~rasteret_core.products.ndvi_dates`: one date's NDVI for a set of AOIs, read once,
  written as COGs (the call a scheduler makes per date).
- :mod:`~rasteret_core.products.indices`: other spectral indices by name (spyndex's catalogue).
- :mod:`~rasteret_core.products.timeseries`: statistics per AOI and date, the tidy time-series table.
- :mod:`~rasteret_core.products.timeseries_chart`, :mod:`~rasteret_core.products.ndvi_preview`:
  charts and maps (matplotlib).
- :mod:`~rasteret_core.products.outputs`: COG outputs and reading them back.
- :mod:`~rasteret_core.products.aois`: named AOI files.
"""
