"""Reliability suite: faults, hostile input, crashes, concurrency, load and credential leaks.

Tests record the figures they measure with ``record_property("reliability.<figure>", value)``;
the terminal summary (``tests/conftest.py``) adds them up across workers, so every run of the
suite prints how many faults were injected and survived, fuzz cases, crash kills and memory.
"""

from __future__ import annotations

# the pipelines' local scenes, object store and resources, shared with this suite
from tests.pipelines.conftest import demo_scenes, instance, pipeline, scene_server  # noqa: F401
