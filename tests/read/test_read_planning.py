"""Planning an AOI time series: windows computed once per grid, fetching starts while planning."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import numpy as np
import pytest
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import shape

from rasteret_core.cog import read_header
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.raster.geometry import to_crs
from rasteret_core.raster.windows import aoi_window
from rasteret_core.read import read_aois
from rasteret_core.read.aoi import AoiReadResult, read_jobs

S2_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B04", "B08"]


@pytest.fixture(scope="module")
def s2_headers(object_store):
    return {b: read_header(object_store.url("public", f"{S2_DIR}/{b}.tif")) for b in BANDS + ["SCL"]}


def dated_scenes(store, headers, n: int, bands=BANDS) -> list[Scene]:
    """``n`` dates of the same real scene, as a collection's scenes of one tile are."""
    start = dt.datetime(2020, 2, 19, 11, tzinfo=dt.timezone.utc)
    footprint = shapely.box(-10.0, 24.3, -8.9, 25.3)
    return [
        Scene(f"S2A_29RKH_{(start + dt.timedelta(days=5 * i)):%Y%m%d}", "sentinel-2-l2a", start + dt.timedelta(days=5 * i),
              footprint, bands={b: BandAsset(b, store.url("public", f"{S2_DIR}/{b}.tif"), headers[b]) for b in bands})
        for i in range(n)
    ]


def field(header, fx: float, fy: float, size: float):
    a, _, c, _, e, f = header.transform
    x0, y0 = c + fx * header.width * a, f + fy * header.height * e
    utm = shapely.box(x0, y0 - size * header.height * -e, x0 + size * header.width * a, y0)
    return shape(transform_geom(f"EPSG:{header.crs_epsg}", "EPSG:4326", utm.__geo_interface__))


def test_windows_are_computed_once_per_grid_and_shared_across_dates(store, s2_headers):
    scenes = dated_scenes(store, s2_headers, 5, BANDS + ["SCL"])
    h = s2_headers["B04"]
    geoms = {"a": field(h, 0.2, 0.3, 0.1), "b": field(h, 0.6, 0.1, 0.05)}
    jobs = read_jobs(scenes, geoms, BANDS + ["SCL"], AoiReadResult())
    assert len(jobs) == 5 * 3 * 2
    for gid, geom in geoms.items():
        for band in BANDS + ["SCL"]:
            crops = [j.crop for j in jobs if j.geometry_id == gid and j.band == band]
            # one object for every date of the grid, equal to a window computed on its own
            assert len({id(c) for c in crops}) == 1
            expected = aoi_window(s2_headers[band], to_crs(geom, s2_headers[band].crs_epsg))
            assert crops[0].window == expected.window
            np.testing.assert_array_equal(crops[0].outside, expected.outside)
    # B04 and B08 share a grid, SCL (20 m) has its own window
    crop = {b: next(j.crop for j in jobs if j.geometry_id == "a" and j.band == b) for b in BANDS + ["SCL"]}
    assert crop["B04"] is crop["B08"] and crop["SCL"] is not crop["B04"]
    # a shared mask cannot be changed through one date's raster
    with pytest.raises(ValueError):
        crop["B04"].outside[0, 0] = True


def test_a_scene_on_another_grid_gets_its_own_window(store, s2_headers):
    scenes = dated_scenes(store, s2_headers, 2)
    t = s2_headers["B04"].transform  # the same tile's grid, 3 pixels further east
    shifted = dataclasses.replace(s2_headers["B04"], transform=(t[0], t[1], t[2] + 3 * t[0], *t[3:]))
    scenes[1] = dataclasses.replace(scenes[1], bands={"B04": dataclasses.replace(scenes[1].bands["B04"], header=shifted)})
    geom = field(s2_headers["B04"], 0.3, 0.3, 0.1)
    jobs = read_jobs(scenes, {"a": geom}, ["B04"], AoiReadResult())
    windows = [j.crop.window for j in jobs]
    assert windows == [aoi_window(h, to_crs(geom, 32629)).window for h in (s2_headers["B04"], shifted)]
    assert windows[0] != windows[1]


def test_reads_start_before_the_scenes_are_all_planned(store, s2_headers):
    """A streamed scene list: requests of the first dates are under way before the last is produced."""
    scenes = dated_scenes(store, s2_headers, 4)
    seen_requests: list[int] = []
    first_request = threading.Event()

    def stream():
        yield scenes[0]
        # the reader must not wait for the rest of the iterator before sending requests
        for _ in range(2000):
            if store.stats.requests > 0:
                first_request.set()
                break
            first_request.wait(0.005)
        seen_requests.append(store.stats.requests)
        yield from scenes[1:]

    geom = field(s2_headers["B04"], 0.2, 0.3, 0.1)
    result = read_aois(stream(), {"a": geom}, BANDS, batch_size=1)
    assert first_request.is_set() and seen_requests[0] > 0
    assert not result.failures and len(result.rasters) == 4 * 2
    # every date returns the same pixels (same file), in scene order
    assert [r.scene_id for r in result.rasters] == [s.id for s in scenes for _ in BANDS]
    for r in result.rasters[2:]:
        ref = result.rasters[BANDS.index(r.band)]
        np.testing.assert_array_equal(r.data, ref.data)
