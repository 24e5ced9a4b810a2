"""Which scenes make one time step of a load, and in which order their pixels win.

The one home of these conventions, for the eager mosaic (:mod:`rasteret_core.read.mosaic`) and ``load``:
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
from typing import Any, Callable, Iterable, Sequence

from rasteret_core.collection.scene import Scene
from rasteret_core.errors import ArgumentError, RasteretError

__all__ = ["TimeStep", "group_key", "group_scenes", "mosaic_order", "solar_day"]


def solar_day(scene: Scene) -> dt.date:
    """The local solar date of a scene (odc-stac's ``solar_day``): UTC time + centroid longitude / 15 h."""
    lon = scene.geometry.centroid.x
    return (scene.datetime + dt.timedelta(hours=lon / 15.0)).date()


def mosaic_order(scenes: Iterable[Scene]) -> list[Scene]:
    """Scenes in first-valid-wins order: least cloud cover first (unknown last), then id."""
    return sorted(scenes, key=lambda s: (s.cloud_cover is None, s.cloud_cover or 0.0, s.id))


def group_key(scene: Scene, groupby: str | Callable[[Scene], Any] | None) -> Any:
    """The time-step key of a scene: its solar day, its datetime, a callable's value, or None."""
    if groupby is None:
        return None
    if groupby == "solar_day":
        return solar_day(scene)
    if groupby == "time":
        return scene.datetime
    if callable(groupby):
        return groupby(scene)
    raise ArgumentError(f"groupby must be 'solar_day', 'time', a callable or None, not {groupby!r}")


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
