"""The memory budget of eager reads: one number, checked before a large array is allocated.

Eager paths (``get_xarray``, ``get_gdf``, ``read``, mosaics) build their output in memory. A
valid but large AOI (a degree around one scene) used to cost gigabytes, then a bare
``MemoryError``. :func:`check` refuses such an allocation up front with the size in pixels and
bytes and the alternative (``load(..., chunks=...)`` streams).

The budget is ``RASTERET_MEMORY_BUDGET`` (bytes, or with a unit: ``512MiB``, ``4GiB``, ``2GB``)
or, by default, :data:`DEFAULT_BUDGET` capped at half the machine's memory.
"""

from __future__ import annotations

import os
import re
import sys

from rasteret_core.errors import ArgumentError, MemoryBudgetError

ENV = "RASTERET_MEMORY_BUDGET"
DEFAULT_BUDGET = 4 * 2**30
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """Bytes from ``4GiB``, ``512 MB``, ``1e9`` or an integer.

    Raises:
        ValueError: not a positive size.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if match is None or match.group(2).lower() not in _UNITS:
            raise ArgumentError(f"not a size: {text!r} (use bytes, or a number with KiB, MiB, GiB, KB, MB, GB)")
        value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not value >= 1 or value > 2**62:
        raise ArgumentError(f"a memory budget must be from 1 byte to 4 EiB, got {text!r}")
    return int(value)


def memory_budget() -> int:
    """The budget in bytes: ``RASTERET_MEMORY_BUDGET``, else the default (see the module doc)."""
    given = os.environ.get(ENV)
    if given:
        return parse_size(given)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_BUDGET
    return min(DEFAULT_BUDGET, physical // 2)


def check(nbytes: int, *, pixels: int, what: str, alternative: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``nbytes`` would exceed the budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise MemoryBudgetError(
            f"{what} would need {nbytes / 2**20:,.0f} MiB ({pixels:,} pixels), more than the memory budget of"
            f" {budget / 2**20:,.0f} MiB ({ENV}); {alternative}")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far in MiB (for run reports; 0 where unknown)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux
