"""Radiometry: the one place that decides how a band's stored numbers become physical values.

Contract (read by every reader, sampler and writer of the project):

- A rule is decided **once per item and band, at harvest**, by :func:`decide`, and stored in
  the collection with the band (:class:`~rasteret_core.collection.scene.BandAsset` fields
  ``scale``, ``offset``, ``rule``, ``reason``; band struct columns of the same names).
  Reads never re-decide: they apply what is stored.
- ``physical = DN * scale + offset``; ``scale is None`` means the band is not scaled (raw
  values: masks, QA bits, or a product without a known rule); ``offset`` is then ignored.
  :func:`to_physical` applies it (float32, NaN where DN is nodata).
- ``rule`` is a short identifier from :data:`RULES`, ``reason`` a sentence naming the item
  metadata the decision rests on, so users can see why a value is what it is.

Rules (the table with its sources is in ``docs/radiometry.md``):

Sentinel-2 L2A reflectance bands (scale from ``raster:bands`` when given, else 1/10000, the
product's QUANTIFICATION_VALUE):

1. ``s2-boa-offset-applied``: ``earthsearch:boa_offset_applied`` is true -> offset 0 whatever
   ``raster:bands`` says (Earth Search already removed BOA_ADD_OFFSET from the pixels).
2. ``s2-baseline-offset``: processing baseline >= 04.00, not applied -> offset -1000 DN
   (-0.1 at scale 0.0001).
3. ``s2-baseline-no-offset``: processing baseline < 04.00 -> offset 0.
4. ``raster-bands``: no baseline and no flag -> the item's ``raster:bands`` scale/offset...
5. ``s2-sensing-date``: ...else the sensing date: from 2022-01-25 (baseline 04.00 went
   operational) -1000 DN, before it 0.

Landsat Collection 2 Level-2, when the asset has no ``raster:bands`` scale/offset
(landsatlook items have none): ``landsat-c2-sr`` DN x 0.0000275 - 0.2 for surface
reflectance, ``landsat-c2-st`` DN x 0.00341802 + 149.0 (kelvin) for surface temperature.
With ``raster:bands`` present: ``raster-bands``.

Anything else: ``raster-bands`` when the asset declares a scale or offset, else ``raw``.
A per-band user override on the data source (``DataSource.radiometry``) beats every rule:
``user-override``.

:func:`check_plausible` runs on every reflectance read: when many valid pixels come out
negative, it returns a warning naming the scene, band and rule (the metadata is probably
wrong); it never changes values.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from rasteret_core.errors import ArgumentError

S2_SCALE = 1e-4
"""Sentinel-2 L2A QUANTIFICATION_VALUE 10000: reflectance = DN / 10000."""
S2_BOA_ADD_OFFSET_DN = -1000
"""Copernicus BOA_ADD_OFFSET from processing baseline 04.00."""
S2_OFFSET_BASELINE = (4, 0)
S2_OFFSET_SINCE = dt.date(2022, 1, 25)
"""Baseline 04.00 went operational on this sensing date."""

LANDSAT_SR = (0.0000275, -0.2)
"""USGS Landsat C2 L2 surface reflectance: DN x 0.0000275 - 0.2."""
LANDSAT_ST = (0.00341802, 149.0)
"""USGS Landsat C2 L2 surface temperature (kelvin): DN x 0.00341802 + 149.0."""

RULES = {
    "s2-boa-offset-applied": "Sentinel-2 L2A, earthsearch:boa_offset_applied true: offset 0",
    "s2-baseline-offset": "Sentinel-2 L2A, processing baseline >= 04.00, offset not applied: -1000 DN",
    "s2-baseline-no-offset": "Sentinel-2 L2A, processing baseline < 04.00: offset 0",
    "s2-sensing-date": "Sentinel-2 L2A without baseline/flag/raster:bands: offset by sensing date",
    "landsat-c2-sr": "Landsat C2 L2 surface reflectance, USGS rule: DN x 0.0000275 - 0.2",
    "landsat-c2-st": "Landsat C2 L2 surface temperature, USGS rule: DN x 0.00341802 + 149.0 K",
    "raster-bands": "the asset's STAC raster:bands scale/offset",
    "user-override": "scale/offset given for this band on the data source",
    "raw": "no rule: raw values (masks, QA bits, or no scale/offset known)",
}

_S2_REFLECTANCE_KEYS = {
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "nir09",
    "swir16", "swir22", "cirrus",
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
}
_LANDSAT_SR_KEYS = {"coastal", "blue", "green", "red", "nir08", "swir16", "swir22"}
_LANDSAT_ST_KEYS = {"lwir", "lwir11", "lwir12", "st", "st_b10", "st_b6"}
_LANDSAT_SR_FILE = re.compile(r"_SR_B\d+\.TIF", re.IGNORECASE)
_LANDSAT_ST_FILE = re.compile(r"_ST_B\d+\.TIF", re.IGNORECASE)


@dataclass(frozen=True)
class Radiometry:
    """How one band of one item turns DN into a physical value.

    ``physical = DN * scale + offset``; ``scale is None`` means raw values (no scaling).
    """

    scale: float | None
    offset: float | None
    rule: str
    reason: str

    @property
    def scaled(self) -> bool:
        """True when the band has a DN -> physical conversion."""
        return self.scale is not None


# --- product recognition --------------------------------------------------------------------
def is_sentinel2_l2a(item: Mapping[str, Any]) -> bool:
    """True for a Sentinel-2 Level-2A item (Earth Search v1 / Collection 1, Planetary Computer)."""
    props = item.get("properties") or {}
    collection = str(item.get("collection") or "").lower()
    platform = str(props.get("platform") or "").lower()
    item_id = str(item.get("id") or "").upper()
    sentinel2 = "sentinel-2" in collection or platform.startswith("sentinel-2") or "s2:processing_baseline" in props
    level2a = "l2a" in collection or item_id.endswith("_L2A") or "MSIL2A" in item_id or props.get("s2:product_type") == "S2MSI2A"
    return sentinel2 and level2a


def landsat_sensor(item: Mapping[str, Any]) -> str | None:
    """``"TM"``, ``"ETM"`` or ``"OLI"`` for a Landsat item (from instruments, platform or id), else None."""
    props = item.get("properties") or {}
    instruments = {str(i).upper() for i in props.get("instruments") or []}
    if "OLI" in instruments:
        return "OLI"
    if "ETM" in instruments or "ETM+" in instruments:
        return "ETM"
    if "TM" in instruments:
        return "TM"
    platform = re.sub(r"[^0-9a-z]", "", str(props.get("platform") or "").lower())
    by_platform = {"landsat4": "TM", "landsat5": "TM", "landsat7": "ETM", "landsat8": "OLI", "landsat9": "OLI"}
    if platform in by_platform:
        return by_platform[platform]
    match = re.match(r"L([CTEO])0?(\d)", str(item.get("id") or "").upper())
    if match:
        return {"C": "OLI", "O": "OLI", "E": "ETM", "T": "TM"}[match.group(1)]
    return None


def is_landsat_c2_l2(item: Mapping[str, Any]) -> bool:
    """True for a Landsat Collection 2 Level-2 item (landsatlook, Earth Search, Planetary Computer)."""
    collection = str(item.get("collection") or "").lower()
    item_id = str(item.get("id") or "").upper()
    props = item.get("properties") or {}
    return landsat_sensor(item) is not None and (
        "landsat-c2" in collection or "_L2S" in item_id or str(props.get("landsat:correction", "")).startswith("L2")
    )


def processing_baseline(item: Mapping[str, Any]) -> tuple[int, int] | None:
    """``s2:processing_baseline`` ("05.10", "N0510", 5.1) as (major, minor), None when absent/unreadable."""
    value = (item.get("properties") or {}).get("s2:processing_baseline")
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().upper()
    match = re.fullmatch(r"N?(\d{1,2})\.?(\d{2})", text) or re.fullmatch(r"(\d{1,2})\.(\d)", text)
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if len(match.group(2)) == 1:
        minor *= 10
    return major, minor


def boa_offset_applied(item: Mapping[str, Any]) -> bool | None:
    """``earthsearch:boa_offset_applied`` as a bool, None when absent or not a boolean."""
    value = (item.get("properties") or {}).get("earthsearch:boa_offset_applied")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def raster_bands_scale_offset(asset: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The first ``raster:bands`` entry's (scale, offset) of an asset, None where not given."""
    bands = asset.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], Mapping):
        return _number(bands[0].get("scale")), _number(bands[0].get("offset"))
    return None, None


# --- the decision -----------------------------------------------------------------------------
def decide(
    item: Mapping[str, Any],
    asset_key: str,
    asset: Mapping[str, Any] | None,
    *,
    override: Mapping[str, Any] | None = None,
) -> Radiometry:
    """The radiometry rule of one asset of one STAC item (a dict).

    ``override`` (``{"scale": s, "offset": o}``, from ``DataSource.radiometry``) wins over
    every rule. Never raises on odd metadata: unreadable values fall through to the next rule,
    and the reason says so.
    """
    asset = asset if isinstance(asset, Mapping) else {}
    item_id = item.get("id")
    if override is not None:
        scale, offset = _number(override.get("scale")), _number(override.get("offset"))
        if scale is None and offset is None:
            raise ArgumentError(f"radiometry override for asset {asset_key!r} needs a scale or an offset")
        return Radiometry(1.0 if scale is None else scale, offset or 0.0, "user-override",
                          f"scale {scale}, offset {offset} set for this band on the data source")
    rb_scale, rb_offset = raster_bands_scale_offset(asset)
    if is_sentinel2_l2a(item) and _is_s2_reflectance(asset_key, asset):
        return _sentinel2(item, rb_scale, rb_offset)
    if is_landsat_c2_l2(item):
        kind = _landsat_kind(asset_key, asset)
        if kind is not None:
            if rb_scale is not None or rb_offset is not None:
                return Radiometry(1.0 if rb_scale is None else rb_scale, rb_offset or 0.0, "raster-bands",
                                  f"Landsat C2 L2 {kind}: raster:bands scale {rb_scale}, offset {rb_offset}")
            scale, offset = LANDSAT_SR if kind == "SR" else LANDSAT_ST
            rule = "landsat-c2-sr" if kind == "SR" else "landsat-c2-st"
            return Radiometry(scale, offset, rule,
                              f"Landsat C2 L2 {kind} asset {asset_key!r} of {item_id} has no raster:bands: USGS rule")
    if rb_scale is not None or rb_offset is not None:
        return Radiometry(1.0 if rb_scale is None else rb_scale, rb_offset or 0.0, "raster-bands",
                          f"raster:bands scale {rb_scale}, offset {rb_offset}")
    return Radiometry(None, None, "raw", f"asset {asset_key!r}: no scale/offset rule, raw values")


def _sentinel2(item: Mapping[str, Any], rb_scale: float | None, rb_offset: float | None) -> Radiometry:
    scale = rb_scale if rb_scale is not None else S2_SCALE
    with_offset = S2_BOA_ADD_OFFSET_DN * scale
    applied = boa_offset_applied(item)
    baseline = processing_baseline(item)
    shown = f"{baseline[0]:02d}.{baseline[1]:02d}" if baseline else None
    ignored = f" (raster:bands offset {rb_offset} ignored)" if rb_offset not in (None, 0.0) else ""
    if applied:
        return Radiometry(scale, 0.0, "s2-boa-offset-applied",
                          f"earthsearch:boa_offset_applied is true: pixels already carry the offset{ignored}")
    if baseline is not None:
        if baseline >= S2_OFFSET_BASELINE:
            flag = "false" if applied is False else "absent"
            return Radiometry(scale, with_offset, "s2-baseline-offset",
                              f"processing baseline {shown} >= 04.00, boa_offset_applied {flag}: BOA_ADD_OFFSET -1000 DN")
        return Radiometry(scale, 0.0, "s2-baseline-no-offset",
                          f"processing baseline {shown} < 04.00: no BOA_ADD_OFFSET{ignored}")
    if rb_scale is not None or rb_offset is not None:
        return Radiometry(scale, rb_offset or 0.0, "raster-bands",
                          f"no processing baseline or boa_offset_applied: raster:bands scale {rb_scale}, offset {rb_offset}")
    sensed = _sensing_date(item)
    if sensed is not None and sensed >= S2_OFFSET_SINCE:
        return Radiometry(scale, with_offset, "s2-sensing-date",
                          f"no baseline, flag or raster:bands; sensed {sensed} >= {S2_OFFSET_SINCE}: -1000 DN")
    return Radiometry(scale, 0.0, "s2-sensing-date",
                      f"no baseline, flag or raster:bands; sensed {sensed} before {S2_OFFSET_SINCE}: offset 0")


def _is_s2_reflectance(asset_key: str, asset: Mapping[str, Any]) -> bool:
    if asset_key in _S2_REFLECTANCE_KEYS or asset_key.upper() in _S2_REFLECTANCE_KEYS:
        return True
    eo = asset.get("eo:bands")
    return isinstance(eo, list) and bool(eo) and isinstance(eo[0], Mapping) and eo[0].get("common_name") is not None


def _landsat_kind(asset_key: str, asset: Mapping[str, Any]) -> str | None:
    href = str(asset.get("href") or "")
    alternate = asset.get("alternate")
    if isinstance(alternate, Mapping):
        href += " " + " ".join(str(v.get("href", "")) for v in alternate.values() if isinstance(v, Mapping))
    key = asset_key.lower()
    if key in _LANDSAT_ST_KEYS or _LANDSAT_ST_FILE.search(href):
        return "ST"
    if key in _LANDSAT_SR_KEYS or key.startswith("sr_b") or _LANDSAT_SR_FILE.search(href):
        return "SR"
    return None


def _sensing_date(item: Mapping[str, Any]) -> dt.date | None:
    props = item.get("properties") or {}
    value = props.get("datetime") or props.get("start_datetime")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


# --- applying a rule --------------------------------------------------------------------------
def to_physical(data: np.ndarray, scale: float | None, offset: float | None, nodata: float | None) -> np.ndarray:
    """``data * scale + offset`` as float32 with NaN where ``data`` is ``nodata`` (or NaN).

    ``scale is None`` keeps the values (cast to float32, nodata still NaN).
    """
    out = data.astype(np.float64)
    if scale is not None:
        out = out * scale + (offset or 0.0)
    invalid = np.zeros(data.shape, dtype=bool)
    if nodata is not None:
        invalid |= np.isnan(data) if np.isnan(nodata) and data.dtype.kind == "f" else data == nodata
    if data.dtype.kind == "f":
        invalid |= np.isnan(data)
    out = out.astype(np.float32)
    out[invalid] = np.nan
    return out


def cf_attributes(scale: float | None, offset: float | None, nodata: float | None) -> dict[str, float]:
    """CF packing attributes of a raw variable (``scale_factor``, ``add_offset``, ``_FillValue``),
    so ``xr.decode_cf`` and rioxarray's ``mask_and_scale`` give :func:`to_physical`'s values."""
    attrs: dict[str, float] = {}
    if scale is not None:
        attrs["scale_factor"] = float(scale)
        attrs["add_offset"] = float(offset or 0.0)
    if nodata is not None:
        attrs["_FillValue"] = nodata
    return attrs


NEGATIVE_TOLERANCE = -0.01
"""Reflectances below this count as negative (small negatives are normal noise over water/shadow)."""
NEGATIVE_FRACTION = 0.05
"""Warn when more than this fraction of valid pixels is negative."""


def check_plausible(values: np.ndarray, *, scene_id: str, band: str, rule: str | None,
                    min_pixels: int = 16, where: np.ndarray | None = None) -> str | None:
    """A warning when many valid reflectances are negative (the metadata is likely wrong), else None.

    ``values`` are physical reflectances (NaN = not valid); ``where`` limits the check to those
    pixels (an AOI's), without copying them out. Values are never changed.
    """
    finite = np.isfinite(values)
    if where is not None:
        finite &= where
    count = int(np.count_nonzero(finite))
    if count < min_pixels:
        return None
    with np.errstate(invalid="ignore"):
        negative = int(np.count_nonzero((values < NEGATIVE_TOLERANCE) & finite))
    fraction = negative / count
    if fraction <= NEGATIVE_FRACTION:
        return None
    return (f"scene {scene_id} band {band}: {fraction:.0%} of {count} valid pixels have negative reflectance"
            f" under rule {rule!r}; the scene's scale/offset metadata is probably wrong"
            " (override it per band on the data source)")
