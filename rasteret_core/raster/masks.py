"""Cloud masks: which Sentinel-2 SCL classes and Landsat QA_PIXEL bits make a pixel invalid.

One home for the mask rules that NDVI, ``get_xarray(mask_clouds=True)`` and the mosaics apply.
"""

from __future__ import annotations

import numpy as np

from rasteret_core.errors import ArgumentError

MASK_BANDS = ("SCL", "QA_PIXEL")
"""Band codes treated as cloud masks: never scaled, never a reason to skip a pixel by nodata."""


SCL_MASKED_CLASSES = (0, 1, 3, 8, 9, 10)
"""Sentinel-2 SCL classes masked: no data, saturated/defective, cloud shadow, cloud medium
and high probability, thin cirrus. Snow (11), water (6) and bare soil (5) stay: NDVI is
meaningful (if low) there."""

QA_PIXEL_MASKED_BITS = (0, 1, 2, 3, 4)
"""Landsat C2 QA_PIXEL bits masked: fill, dilated cloud, cirrus, cloud, cloud shadow."""


def scl_cloud_mask(scl: np.ndarray) -> np.ndarray:
    """True where a Sentinel-2 SCL pixel must be masked."""
    return np.isin(scl, SCL_MASKED_CLASSES)


def qa_pixel_cloud_mask(qa: np.ndarray) -> np.ndarray:
    """True where any masked Landsat QA_PIXEL bit is set."""
    bits = sum(1 << b for b in QA_PIXEL_MASKED_BITS)
    return (qa.astype(np.uint32) & bits) != 0


def mask_function(mask: str | None, mask_kind: str | None = None):
    """The cloud-mask function of a mask band (``scl`` / ``qa_pixel`` by kind or band code)."""
    kind = (mask_kind or ("qa_pixel" if mask and mask.upper() == "QA_PIXEL" else "scl")).lower()
    if kind not in ("scl", "qa_pixel"):
        raise ArgumentError(f"mask_kind must be 'scl' or 'qa_pixel', not {mask_kind!r}")
    return scl_cloud_mask if kind == "scl" else qa_pixel_cloud_mask
