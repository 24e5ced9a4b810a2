"""Which scenes make one time step of a load, and in which order their pixels win.

The conventions are the eager mosaic's (:mod:`rasteret_core.read.mosaic`, their one home):
``groupby="solar_day"`` (odc-stac's: the local solar date at the footprint's centre, so the
tiles of one overpass share a step), ``"time"`` (the exact acquisition time), a callable of
the scene, or ``None`` (every scene in one step); ``load`` adds the name of a STAC property
(e.g. ``"s2:datatake_id"``), as odc-stac does. Within a step the first valid pixel wins,
least cloud cover first (unknown last), then scene id. The step's time is its earliest
acquisition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rasteret_core.collection.scene import Scene
from rasteret_core.errors import RasteretError
from rasteret_core.read.mosaic import group_key, mosaic_order, solar_day

__all__ = ["TimeStep", "group_scenes", "mosaic_order", "solar_day"]


@dataclass(frozen=True)
class TimeStep:
    """One output time step: its label, its time coordinate and its scenes in mosaic order."""

    key: Any
    time: dt.datetime
    scenes: tuple[Scene, ...]


def group_scenes(scenes: Sequence[Scene], groupby: str | Callable[[Scene], Any] | None = "solar_day") -> list[TimeStep]:
    """Scenes grouped into time steps (in time order), each in mosaic order.

    Raises :class:`RasteretError` for a property name that some scene lacks.
    """
    groups: dict[Any, list[Scene]] = {}
    for scene in scenes:
        if isinstance(groupby, str) and groupby not in ("solar_day", "time"):
            if groupby not in scene.properties:
                raise RasteretError(f"groupby={groupby!r}: scene {scene.id} has no such property")
            key: Any = scene.properties[groupby]
        else:
            key = group_key(scene, groupby)
        groups.setdefault(key, []).append(scene)
    steps = [TimeStep(k, min(s.datetime for s in g), tuple(mosaic_order(g))) for k, g in groups.items()]
    steps.sort(key=lambda s: (s.time, str(s.key)))
    return steps
