"""The unit a collection stores and a read consumes: one STAC item with its band headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import CogHeader


@dataclass(frozen=True)
class BandAsset:
    """One band of a scene: where its COG is, its parsed header, and how to scale it.

    ``header`` is ``None`` when the harvest failed; ``error`` then says why.
    Physical value = ``DN * scale + offset``; ``scale is None`` means raw values. The rule
    was decided once at harvest by :func:`rasteret_core.radiometry.decide`: ``rule`` names
    it, ``reason`` says which item metadata it rests on.
    """

    band: str
    href: str
    header: CogHeader | None = None
    error: str | None = None
    scale: float | None = None
    offset: float | None = None
    rule: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Scene:
    """One STAC item of a collection, with a :class:`BandAsset` per requested band.

    ``geometry`` is the item footprint in EPSG:4326; ``datetime`` is timezone-aware UTC.
    """

    id: str
    collection: str
    datetime: datetime
    geometry: BaseGeometry
    cloud_cover: float | None = None
    bands: dict[str, BandAsset] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    requester_pays: bool = False
