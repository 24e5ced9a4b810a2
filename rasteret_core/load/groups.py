"""Which scenes make one time step of a load, and in which order their pixels win.

``groupby`` follows odc-stac: ``"solar_day"`` (the local solar date at the footprint's
centre, so the tiles of one overpass share a step), ``"time"`` (the exact acquisition
time) or the name of a STAC property (e.g. ``"s2:datatake_id"``). Within a step the first
valid pixel wins, in this order: least cloud cover first (unknown cloud cover last), then
acquisition time, then scene id. The step's time is its earliest acquisition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

from rasteret_core.collection.scene import Scene
from rasteret_core.errors import RasteretError


@dataclass(frozen=True)
class TimeStep:
    """One output time step: its label, its time coordinate and its scenes in mosaic order."""

    key: Any
    time: dt.datetime
    scenes: tuple[Scene, ...]


def solar_day(scene: Scene) -> dt.date:
    """The local solar date of ``scene``: UTC time shifted by the footprint centre's longitude."""
    lon = scene.geometry.centroid.x
    return (scene.datetime.astimezone(dt.timezone.utc) + dt.timedelta(hours=lon / 15.0)).date()


def mosaic_order(scenes: Sequence[Scene]) -> list[Scene]:
    """Scenes in the order their valid pixels win: least cloud, then time, then id."""
    return sorted(scenes, key=lambda s: (s.cloud_cover is None, s.cloud_cover or 0.0, s.datetime, s.id))


def group_scenes(scenes: Sequence[Scene], groupby: str | None = "solar_day") -> list[TimeStep]:
    """Scenes grouped into time steps (in time order), each in mosaic order.

    ``groupby=None`` gives every scene its own step. Raises :class:`RasteretError` for a
    property that some scene lacks.
    """
    groups: dict[Any, list[Scene]] = {}
    for scene in scenes:
        if groupby is None:
            key: Any = (scene.datetime, scene.id)
        elif groupby == "solar_day":
            key = solar_day(scene)
        elif groupby == "time":
            key = scene.datetime
        else:
            if groupby not in scene.properties:
                raise RasteretError(f"groupby={groupby!r}: scene {scene.id} has no such property")
            key = scene.properties[groupby]
        groups.setdefault(key, []).append(scene)
    steps = [TimeStep(k, min(s.datetime for s in g), tuple(mosaic_order(g))) for k, g in groups.items()]
    steps.sort(key=lambda s: (s.time, str(s.key)))
    return steps
