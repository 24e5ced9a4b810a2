"""Peak memory of one call in a child process: the larger of the ``ru_maxrss`` growth and a
1 ms sampler of ``/proc/self/statm`` (the sampler sees a peak the process already had before
the call; ``ru_maxrss`` sees one shorter than a millisecond)."""

from __future__ import annotations

import os
import resource
import threading
import time
from typing import Any, Callable

PAGE = os.sysconf("SC_PAGE_SIZE")


def maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class Sampler(threading.Thread):
    """Samples the resident size every millisecond until ``done`` is set."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.001)


def measured(call: Callable[[], Any]) -> tuple[Any, int, float]:
    """``(call(), peak resident growth in bytes, wall seconds)``."""
    base_max, base_now = maxrss(), rss()
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        seconds = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
    return result, max(maxrss() - base_max, sampler.peak - base_now, 0), seconds
