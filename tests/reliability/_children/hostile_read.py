"""Child process of the untrusted-input tests: one read, its outcome and its peak memory.

``python -m tests.reliability._children.hostile_read '<json>'`` with ``reads``, a list of
``{op, url, options, geometry}``: ``op`` is ``header``, ``window`` (the first 2 x 2 tiles) or
``aoi`` (the window of ``geometry``, GeoJSON in EPSG:4326), ``options`` are ReaderOptions
fields; ``warmup`` reads run first, unmeasured. Prints one ``RESULT [json, ...]`` line, per
read: ``error_type``, ``error``, ``shape``, the read's counters, ``peak_rss_extra`` (resident memory growth over
the process after imports and a warm-up read: the larger of the ``ru_maxrss`` growth and a
1 ms sampler of ``/proc/self/statm``) and ``peak_traced`` (tracemalloc's peak of Python and
numpy allocations, which sees allocations before their pages are touched).
"""

from __future__ import annotations

import json
import sys
import tracemalloc

from tests.reliability._children.memory import Sampler, maxrss, rss

def main() -> None:
    params = json.loads(sys.argv[1])
    import numpy as np  # noqa: F401 - imports and a warm-up are outside the measurement
    import shapely.geometry
    from rasterio.windows import Window

    from rasteret_core.cog import CogError, ReaderOptions, ReadStats, read_header, read_windows
    from rasteret_core.raster.geometry import to_crs
    from rasteret_core.raster.windows import aoi_window

    def one(read: dict) -> dict:
        options = dict(read.get("options") or {})
        stats = ReadStats()
        outcome: dict = {}
        try:
            header = read_header(read["url"], stats=stats, **options)
            if read.get("op") == "window":
                window = Window(0, 0, min(header.width, 2 * header.tile_width),
                                min(header.height, 2 * header.tile_height))
                (got,) = read_windows([(header, window)], stats=stats, **options)
                outcome["shape"] = list(got.shape)
            elif read.get("op") == "aoi":
                limits = ReaderOptions(**options)
                geom = to_crs(shapely.geometry.shape(read["geometry"]), header.crs_epsg)
                crop = aoi_window(header, geom, max_pixels=limits.max_window_pixels)
                if crop is None:
                    raise LookupError("the geometry does not overlap the image")
                (got,) = read_windows([(header, crop.window)], stats=stats, **options)
                outcome["shape"] = list(got.shape)
            else:
                outcome["shape"] = [header.height, header.width]
        except CogError as exc:
            outcome.update(error_type=type(exc).__name__, error=str(exc))
        except BaseException as exc:  # anything else is a finding: report it, never hide it
            outcome.update(error_type=f"UNEXPECTED {type(exc).__name__}", error=str(exc)[:500])
        outcome.update(stats.as_dict())
        return outcome

    for warm in params.get("warmup") or []:
        one(warm)
    results = []
    tracemalloc.start()
    for read in params["reads"]:
        base_max, base_now = maxrss(), rss()
        sampler = Sampler()
        sampler.start()
        tracemalloc.reset_peak()
        traced_base = tracemalloc.get_traced_memory()[0]
        outcome = one(read)
        traced = tracemalloc.get_traced_memory()[1] - traced_base
        sampler.done.set()
        sampler.join()
        outcome.update(peak_rss_extra=max(maxrss() - base_max, sampler.peak - base_now, 0), peak_traced=traced)
        results.append(outcome)
    tracemalloc.stop()
    print("RESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
