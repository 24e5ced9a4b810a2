"""Spectral indices by name (EVI, NDWI, SAVI, NBR, NDMI, ... ) from the Awesome Spectral Indices
catalogue, through spyndex, on reflectance per AOI and date.

spyndex keeps the formulas, their standard band names (``N`` near infrared, ``R`` red,
``S1``/``S2`` the shortwave infrared bands, ...) and the default constants (EVI's ``g``,
``C1``, ``C2``, ``L``). This module maps a data source's band codes to those names through
the STAC common names its assets carry, applies each scene's radiometry rule first (the
formulas expect reflectance), and masks clouds as the NDVI product does. NDVI stays
:mod:`rasteret_core.products.ndvi` (the pipelines' product); ``NDVI`` here is the same
formula, for users who pick indices by name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.collection.scene import Scene
from rasteret_core.errors import ArgumentError
from rasteret_core.products.ndvi import aoi_rasters, NdviResult
from rasteret_core.products.timeseries import ndvi_statistics, ndvi_timeseries
from rasteret_core.stac.sources import DataSource

COMMON_TO_STANDARD = {
    "coastal": "A", "blue": "B", "green": "G", "red": "R", "rededge1": "RE1", "rededge2": "RE2",
    "rededge3": "RE3", "nir": "N", "nir08": "N2", "swir16": "S1", "swir22": "S2",
}
"""STAC ``eo:common_name`` -> spyndex standard band. A source whose only near infrared is
``nir08`` (Landsat OLI band 5) uses it as ``N``, as spyndex's own Landsat table does."""

_S2_CODES = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
             "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22"}
"""Sentinel-2 band codes -> common names, for sources whose asset keys are the codes themselves."""


def _spyndex():
    try:
        import spyndex
    except ImportError as exc:  # pragma: no cover - a core dependency; kept for a clear message
        raise ArgumentError("spectral indices need spyndex: pip install spyndex") from exc
    return spyndex


@dataclass(frozen=True)
class SpectralIndex:
    """One index of the catalogue: ``formula`` over ``bands`` (standard names) and ``constants``."""

    name: str
    long_name: str
    formula: str
    bands: tuple[str, ...]
    constants: dict[str, float]
    reference: str
    domain: str

    def tags(self, constants: Mapping[str, float] | None = None) -> dict[str, str]:
        """What an output of this index records of it (GeoTIFF tags): name, long name, formula,
        the constants used (the catalogue's defaults unless overridden) and the reference."""
        used = {**self.constants, **(constants or {})}
        return {"index": self.name, "long_name": self.long_name, "formula": self.formula,
                "constants": ", ".join(f"{k}={v:g}" for k, v in used.items()), "reference": self.reference}

    def source_bands(self, source: DataSource) -> dict[str, str]:
        """Standard band -> the band code of ``source`` to read (an ``ArgumentError`` when the
        source lacks one, naming it)."""
        mapping = standard_bands(source)
        missing = [b for b in self.bands if b not in mapping]
        if missing:
            raise ArgumentError(f"{self.name} needs band(s) {', '.join(missing)} "
                                f"({', '.join(_describe(b) for b in missing)}), which {source.name} does not have")
        return {b: mapping[b] for b in self.bands}


def spectral_index(name: str) -> SpectralIndex:
    """The catalogue entry of ``name`` (case-insensitive); an ``ArgumentError`` suggests close names."""
    spyndex = _spyndex()
    known = {k.upper(): k for k in spyndex.indices}
    key = known.get(str(name).upper())
    if key is None:
        close = difflib.get_close_matches(str(name).upper(), list(known), n=3)
        hint = f"; did you mean {', '.join(known[c] for c in close)}?" if close else ""
        raise ArgumentError(f"{name!r} is not a spectral index of the Awesome Spectral Indices catalogue{hint}")
    entry = spyndex.indices[key]
    bands = tuple(b for b in entry.bands if b in spyndex.bands)
    constants = {c: float(spyndex.constants[c].default) for c in entry.bands if c in spyndex.constants}
    return SpectralIndex(key, str(entry.long_name), str(entry.formula), bands, constants, str(entry.reference),
                         str(entry.application_domain))


def indices_for(source: DataSource, domain: str | None = None) -> list[str]:
    """Names of the catalogue's indices that ``source``'s bands can compute (optionally of one
    application ``domain``: vegetation, water, burn, soil, urban, ...)."""
    spyndex = _spyndex()
    have = set(standard_bands(source))
    out = []
    for key, entry in spyndex.indices.items():
        bands = [b for b in entry.bands if b in spyndex.bands]
        if bands and set(bands) <= have and (domain is None or entry.application_domain == domain):
            out.append(key)
    return sorted(out)


def standard_bands(source: DataSource) -> dict[str, str]:
    """spyndex standard band -> ``source``'s band code, through the assets' common names."""
    by_common: dict[str, str] = {}
    for code, asset in source.band_map.items():
        common = asset if asset in COMMON_TO_STANDARD else _S2_CODES.get(asset)
        if common is None:
            continue
        # prefer the code that is the common name itself (Landsat "red" works on every sensor)
        if common not in by_common or code == common:
            by_common[common] = code
    out = {COMMON_TO_STANDARD[c]: code for c, code in by_common.items()}
    if "N" not in out and "N2" in out:
        out["N"] = out["N2"]
    return out


def compute_index(index: str | SpectralIndex, reflectance: Mapping[str, np.ndarray], *,
                  constants: Mapping[str, float] | None = None,
                  invalid: np.ndarray | None = None) -> np.ndarray:
    """``index`` over reflectance arrays keyed by standard band name, as float32 with NaN where
    an input is NaN, the result is not finite, or ``invalid`` is set.

    ``constants`` override the catalogue's defaults (``{"L": 0.5}`` for SAVI).
    """
    spec = index if isinstance(index, SpectralIndex) else spectral_index(index)
    missing = [b for b in spec.bands if b not in reflectance]
    if missing:
        raise ArgumentError(f"{spec.name} needs reflectance for {', '.join(missing)}")
    params: dict[str, Any] = {**spec.constants, **(constants or {})}
    params.update({b: np.asarray(reflectance[b], dtype=np.float64) for b in spec.bands})
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.asarray(_spyndex().computeIndex(index=spec.name, params=params), dtype=np.float64)
    bad = ~np.isfinite(out)
    if invalid is not None:
        bad |= invalid
    out = out.astype(np.float32)
    out[bad] = np.nan
    return out


def aoi_index(
    scenes: Iterable[Scene],
    geometries: Mapping[str, BaseGeometry],
    index: str | SpectralIndex,
    source: DataSource,
    *,
    mask: str | None = None,
    mask_kind: str = "scl",
    constants: Mapping[str, float] | None = None,
    groupby: Any = "solar_day",
    reader_options: ReaderOptions | None = None,
    stats: ReadStats | None = None,
    **read_kwargs: Any,
) -> NdviResult:
    """``index`` per AOI and time step, as :func:`~rasteret_core.products.ndvi.aoi_ndvi` does NDVI:
    the day's scenes mosaicked (least cloud first, clouds masked by ``mask``), reflectance from
    each scene's radiometry rule, the index computed on the AOI's crop. Coarser bands (20 m
    SWIR) are brought onto the first band's grid by nearest neighbour, as the masks are.
    """
    spec = index if isinstance(index, SpectralIndex) else spectral_index(index)
    codes = spec.source_bands(source)
    return aoi_rasters(
        scenes, geometries, list(dict.fromkeys(codes[b] for b in spec.bands)),
        lambda m: compute_index(spec, {b: m.bands[codes[b]] for b in spec.bands}, constants=constants,
                                invalid=m.source < 0),
        mask=mask, mask_kind=mask_kind, groupby=groupby, reader_options=reader_options, stats=stats, **read_kwargs)


def cloud_mask_band(stored: Iterable[str]) -> tuple[str | None, str]:
    """The cloud-mask band among ``stored`` codes and its kind: ``SCL`` (Sentinel-2),
    ``QA_PIXEL`` (Landsat), or ``(None, "scl")`` when the collection stores neither."""
    stored = set(stored)
    if "SCL" in stored:
        return "SCL", "scl"
    if "QA_PIXEL" in stored:
        return "QA_PIXEL", "qa_pixel"
    return None, "scl"


def index_table(result: NdviResult):
    """The time series of an :func:`aoi_index` (or ``aoi_ndvi``) result as a tidy DataFrame with
    the columns of :data:`~rasteret_core.products.timeseries.TIMESERIES_COLUMNS`, sorted by AOI
    then date; :func:`~rasteret_core.products.timeseries_chart.plot_timeseries` draws it."""
    import pandas as pd

    rows = []
    for raster in result.rasters:
        inside = raster.inside if raster.inside is not None else np.ones(raster.data.shape, dtype=bool)
        stats = ndvi_statistics(raster.data, inside, raster.covered_pixels, raster.aoi_pixels)
        rows.append({"aoi": raster.geometry_id, "date": raster.datetime.strftime("%Y-%m-%d"),
                     **{k: stats[k] for k in ("mean", "median", "p10", "p90", "valid_fraction", "coverage")},
                     "scene_ids": list(raster.scene_ids)})
    if not rows:
        frame = pd.DataFrame({"aoi": [], "date": [], "scene_ids": [],
                              **{k: [] for k in ("mean", "median", "p10", "p90", "valid_fraction", "coverage")}})
    else:
        frame = pd.DataFrame(rows)
    return ndvi_timeseries(frame)


def _describe(band: str) -> str:
    try:
        return str(_spyndex().bands[band].long_name)
    except (KeyError, AttributeError):
        return band
