"""Child process of the bounded-input tests: one case, its outcome, peak memory and wall time.

``python -m tests.reliability._children.bounded_case '<json>'`` with ``case`` (a key of
:data:`CASES`) and its arguments. Imports happen before the measurement. Prints one
``RESULT {...}`` line: ``error_type``/``error`` (a project error is an outcome, anything else
is reported as ``UNEXPECTED``), the case's ``summary``, ``peak_rss_mib`` (resident growth
over the process after imports, see :mod:`memory`) and ``seconds``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from dataclasses import replace
from typing import Any, Callable

import dask.array  # noqa: F401 - load imports it on first use: outside the measurement
import numpy as np
import shapely
from pyproj import Transformer

from rasteret_core.api import Rasteret
from rasteret_core.cog import read_header, read_window
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.errors import RasteretError
from rasteret_core.read import per_geometry_datasets, read_aois
from tests.reliability._children.memory import measured


def _scene(path: str) -> Scene:
    """A Scene of one local COG, its footprint from the header."""
    header = read_header(path)
    a, _, c, _, e, f = header.transform
    x0, x1, y0, y1 = c, c + a * header.width, f + e * header.height, f
    to_lonlat = Transformer.from_crs(header.crs_epsg, 4326, always_xy=True)
    ring = [to_lonlat.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return Scene("big-scene", "test", dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc), shapely.Polygon(ring),
                 bands={"B04": BandAsset("B04", path, header)})


def aoi(args: dict) -> dict:
    """get_xarray's work (read, then the per-geometry mosaic) for an AOI around one scene."""
    scene = _scene(args["cog"])
    if "box" in args:
        geometry = shapely.box(*args["box"])
    else:
        geometry = shapely.box(*scene.geometry.centroid.buffer(args["degrees"]).bounds)
    result = read_aois([scene], {"aoi": geometry}, ["B04"], fill_outside=False)
    if result.failures:
        raise RuntimeError(f"read failed: {result.failures}")
    ds = per_geometry_datasets(result.rasters, ["B04"], [scene], {"aoi": geometry})["aoi"]
    values = ds.B04.values
    return {"shape": list(values.shape), "sum": int(values.astype(np.int64).sum())}


def planar(args: dict) -> dict:
    """A header claiming ``samples`` planes of 2048 x 2048 (empty tiles: a few KiB of file)."""
    header = read_header(args["cog"])
    samples, size = args["samples"], 2048
    tiles = samples * (-(-size // header.tile_width)) * (-(-size // header.tile_height))
    zeros = np.zeros(tiles, np.uint64)
    hostile = replace(header, width=size, height=size, samples_per_pixel=samples, planar_configuration=2,
                      tile_offsets=zeros, tile_byte_counts=zeros, overviews=(), mask=None)
    return {"shape": list(read_window(hostile, ((0, size), (0, size))).shape)}


def tiny_tiles(args: dict) -> dict:
    """1 x 1 tiles on a 200,000 x 200,000 grid, a 2,000 x 2,000 window."""
    header = read_header(args["cog"])
    one = np.zeros(1, np.uint64)
    hostile = replace(header, width=200_000, height=200_000, tile_width=1, tile_height=1, tile_offsets=one,
                      tile_byte_counts=one, overviews=(), mask=None)
    return {"shape": list(read_window(hostile, ((0, 2000), (0, 2000))).shape)}


def _collection(args: dict) -> Rasteret:
    return Rasteret.load_collection(args["name"], args["workspace"])


def stored_read(args: dict) -> dict:
    r = _collection(args)
    datasets = r.get_xarray({"field": shapely.box(*args["aoi"])}, ["B04"], per_geometry=True)
    return {"datasets": len(datasets), "failures": [f.error[:200] for f in datasets.diagnosis.failures]}


def stored_plan(args: dict) -> dict:
    r = _collection(args)
    plan = r.plan("get_xarray", {"field": shapely.box(*args["aoi"])}, ["B04"])
    return {"requests": int(plan.requests)}


def stored_load(args: dict) -> dict:
    r = _collection(args)
    kwargs = {k: args[k] for k in ("resolution", "chunks") if k in args}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = r.load(["B04"], bbox=tuple(args["aoi"]), **kwargs)
    if args.get("expect_warning"):
        return {"warnings": [str(w.message)[:300] for w in caught]}
    if args.get("graph_only"):
        return {"shape": list(ds.B04.shape), "tasks": len(ds.B04.data.__dask_graph__())}
    return {"shape": list(ds.B04.shape), "sum": int(ds.B04.sum().compute())}


def neighbourhood(args: dict) -> dict:
    r = _collection(args)
    x0, y0, x1, y1 = args["aoi"]
    samples = r.sample_points({"p": ((x0 + x1) / 2, (y0 + y1) / 2)}, ["B04"], neighbourhood=args["n"])
    return {"rows": len(samples.to_arrow())}


def cloud_filter(args: dict) -> dict:
    r = _collection(args)
    datasets = r.get_xarray({"field": shapely.box(*args["aoi"])}, ["B04"], cloud_cover_lt=args["value"])
    return {"datasets": len(datasets)}


CASES: dict[str, Callable[[dict], dict]] = {
    "aoi": aoi, "planar": planar, "tiny_tiles": tiny_tiles, "stored_read": stored_read,
    "stored_plan": stored_plan, "stored_load": stored_load, "neighbourhood": neighbourhood,
    "cloud_filter": cloud_filter,
}


def main() -> None:
    params = json.loads(sys.argv[1])
    case = CASES[params["case"]]

    def run() -> dict[str, Any]:
        try:
            return {"summary": case(params)}
        except RasteretError as exc:
            return {"error_type": type(exc).__name__, "error": str(exc)[:500]}
        except BaseException as exc:  # anything else is a finding: report it, never hide it
            return {"error_type": f"UNEXPECTED {type(exc).__name__}", "error": str(exc)[:500]}

    outcome, peak, seconds = measured(run)
    outcome.update(peak_rss_mib=round(peak / 2**20, 1), seconds=round(seconds, 2))
    print("RESULT " + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
