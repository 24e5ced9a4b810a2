"""Reliability suite: faults, hostile input, crashes, concurrency, load and credential leaks.

Tests record the figures they measure with ``record_property(name, value)`` (names starting
with ``reliability.``); the terminal summary adds them up across workers, so every run of the
suite prints how many faults were injected and survived, fuzz cases, crash kills and memory.
"""

from __future__ import annotations

from collections import defaultdict

# the pipelines' local scenes, object store and resources, shared with this suite
from tests.pipelines.conftest import demo_scenes, instance, pipeline, scene_server  # noqa: F401

PREFIX = "reliability."


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    totals: dict[str, float] = defaultdict(float)
    peaks: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if not str(name).startswith(PREFIX) or getattr(report, "when", "call") != "call":
                    continue
                key = name[len(PREFIX):]
                if key.startswith("peak_") or key.startswith("max_"):
                    peaks[key] = max(peaks.get(key, value), value)
                else:
                    totals[key] += value
    if not totals and not peaks:
        return
    terminalreporter.section("reliability figures")
    for key in sorted(totals):
        terminalreporter.write_line(f"{key}: {totals[key]:g}")
    for key in sorted(peaks):
        terminalreporter.write_line(f"{key}: {peaks[key]:g}")
