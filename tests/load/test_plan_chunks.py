"""A load's plan gives a chunk the same source reads as checking that chunk on its own: the
plan only matches each scene to the chunks under its padded outline (fast for wide, fine
grids), so that outline must never miss a chunk, in any CRS, kernel or overview."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.geom import box as geo_box

from rasteret_core.cog import CogHeader, ReaderOptions
from rasteret_core.load.tasks import PADDING, _choose_image, _source_read, plan_band
from rasteret_core.raster.grouping import TimeStep

S2 = Affine(10, 0, 399960, 0, -10, 5000040)  # a Sentinel-2 tile of UTM 31N at 45 N


def header(transform: Affine, epsg: int, size: int = 10980, overviews=()) -> CogHeader:
    return CogHeader(url="mem://b04.tif", width=size, height=size, tile_width=512, tile_height=512,
                     samples_per_pixel=1, planar_configuration=1, dtype=np.dtype("uint16"), bits_per_sample=16,
                     sample_format=1, compression=1, predictor=1, photometric=1, tile_offsets=np.zeros(1),
                     tile_byte_counts=np.zeros(1), crs_epsg=epsg, transform=tuple(transform)[:6], overviews=overviews)


def grid(bounds, crs: str, resolution: float, project_to: str | None = None) -> GeoBox:
    region = geo_box(*bounds, "EPSG:4326")
    return GeoBox.from_geopolygon(region.to_crs(project_to) if project_to else region, resolution=resolution,
                                  crs=project_to or crs)


OVERVIEWS = tuple(header(Affine(10 * f, 0, 399960, 0, -10 * f, 5000040), 32631, 10980 // f) for f in (2, 4, 8, 16))
CASES = {
    "global lon/lat grid": (header(S2, 32631), grid((-180, -90, 180, 90), "EPSG:4326", 0.05), 12, "nearest"),
    "next UTM zone": (header(S2, 32631), grid((2.6, 44.0, 3.6, 45.3), "", 60, "EPSG:32632"), 48, "bilinear"),
    "arctic web mercator": (header(Affine(10, 0, 399960, 0, -10, 7900020), 32633),
                            grid((10, 69, 20, 72), "", 500, "EPSG:3857"), 48, "bilinear"),
    "overview on lon/lat": (header(S2, 32631, overviews=OVERVIEWS), grid((2, 44, 4, 46), "EPSG:4326", 0.004), 24,
                            "lanczos"),
    "same CRS, offset grid": (header(S2, 32631), GeoBox((300, 300), Affine(20, 0, 399960 + 7, 0, -20, 5000040 + 2000 - 3),
                                                         "EPSG:32631"), 7, "cubic"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plan_gives_each_chunk_the_reads_a_chunk_by_chunk_check_finds(case):
    hdr, geobox, size, resampling = CASES[case]
    pad = PADDING[resampling]
    scene = SimpleNamespace(id="s", bands={"B04": SimpleNamespace(header=hdr, scale=None, offset=None)})
    tiles = GeoboxTiles(geobox, (size, size))
    plan = plan_band("B04", [TimeStep(None, None, [scene])], geobox, tiles, dtype="uint16", fill=0,
                     resampling=resampling, physical=False, options=ReaderOptions(), warp_tolerance=0.125,
                     cache_bytes=0)
    planned = {(iy, ix) for iy, row in enumerate(plan.tasks[0]) for ix, task in enumerate(row) if task.sources}
    image = _choose_image(scene, "B04", geobox, pad)
    # the truth, only near the scene (chunks far from it cannot hold a read): every chunk checked
    near = GeoBox((hdr.height, hdr.width), Affine(*hdr.transform),
                  f"EPSG:{hdr.crs_epsg}").extent.to_crs("EPSG:4326").buffer(1.0).to_crs(geobox.crs)
    x0, y0, x1, y1 = near.boundingbox
    cols, rows = zip(*(~geobox.affine * xy for xy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))))
    found = set()
    ny, nx = tiles.shape
    for iy in range(max(0, int(min(rows)) // size), min(ny, int(max(rows)) // size + 1)):
        for ix in range(max(0, int(min(cols)) // size), min(nx, int(max(cols)) // size + 1)):
            chunk = tiles[iy, ix]
            if _source_read("s", image.header, image.overview, image.box, chunk, pad, None, None) is not None:
                found.add((iy, ix))
    assert found and found <= planned, sorted(found - planned)[:5]
