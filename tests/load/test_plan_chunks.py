"""A load's plan gives a read to every chunk the scene covers: the plan only matches each scene
to the chunks under its padded outline (fast for wide, fine grids), so that outline must never
miss a chunk, in any CRS, kernel or overview. The truth is rasterio's: the output pixels an
all-ones image reaches by ``rasterio.warp.reproject`` (nearest)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.geom import box as geo_box
from rasterio.warp import Resampling, reproject

from rasteret_core.cog import CogHeader, ReaderOptions
from rasteret_core.load.tasks import plan_band
from rasteret_core.raster.grouping import TimeStep

S2 = Affine(100, 0, 399960, 0, -100, 5000040)  # a Sentinel-2 tile's extent (at 100 m) in UTM 31N at 45 N


def header(transform: Affine, epsg: int, size: int = 1098, overviews=()) -> CogHeader:
    return CogHeader(url="mem://b04.tif", width=size, height=size, tile_width=512, tile_height=512,
                     samples_per_pixel=1, planar_configuration=1, dtype=np.dtype("uint16"), bits_per_sample=16,
                     sample_format=1, compression=1, predictor=1, photometric=1, tile_offsets=np.zeros(1),
                     tile_byte_counts=np.zeros(1), crs_epsg=epsg, transform=tuple(transform)[:6], overviews=overviews)


def grid(bounds, crs: str, resolution: float, project_to: str | None = None) -> GeoBox:
    region = geo_box(*bounds, "EPSG:4326")
    return GeoBox.from_geopolygon(region.to_crs(project_to) if project_to else region, resolution=resolution,
                                  crs=project_to or crs)


OVERVIEWS = tuple(header(Affine(100 * f, 0, 399960, 0, -100 * f, 5000040), 32631, 1098 // f) for f in (2, 4))
CASES = {
    "global lon/lat grid": (header(S2, 32631), grid((-180, -90, 180, 90), "EPSG:4326", 0.05), 12, "nearest"),
    "next UTM zone": (header(S2, 32631), grid((2.6, 44.0, 3.6, 45.3), "", 60, "EPSG:32632"), 48, "bilinear"),
    "arctic web mercator": (header(Affine(100, 0, 399960, 0, -100, 7900020), 32633),
                            grid((10, 69, 20, 72), "", 500, "EPSG:3857"), 48, "bilinear"),
    "overview on lon/lat": (header(S2, 32631, overviews=OVERVIEWS), grid((2, 44, 4, 46), "EPSG:4326", 0.01), 10,
                            "lanczos"),
    "same CRS, offset grid": (header(S2, 32631), GeoBox((300, 300), Affine(200, 0, 399960 + 7, 0, -200, 5000040 + 20000 - 3),
                                                         "EPSG:32631"), 7, "cubic"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plan_gives_a_read_to_every_chunk_rasterio_reprojects_the_scene_onto(case):
    hdr, geobox, size, resampling = CASES[case]
    scene = SimpleNamespace(id="s", bands={"B04": SimpleNamespace(header=hdr, scale=None, offset=None)})
    tiles = GeoboxTiles(geobox, (size, size))
    plan = plan_band("B04", [TimeStep(None, None, [scene])], geobox, tiles, dtype="uint16", fill=0,
                     resampling=resampling, physical=False, options=ReaderOptions(), warp_tolerance=0.125,
                     cache_bytes=0)
    planned = {(iy, ix) for iy, row in enumerate(plan.tasks[0]) for ix, task in enumerate(row) if task.sources}
    # the truth near the scene (chunks far from it cannot hold a read), by rasterio
    near = GeoBox((hdr.height, hdr.width), Affine(*hdr.transform),
                  f"EPSG:{hdr.crs_epsg}").extent.to_crs("EPSG:4326").buffer(1.0).to_crs(geobox.crs)
    x0, y0, x1, y1 = near.boundingbox
    cols, rows = zip(*(~geobox.affine * xy for xy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))))
    r0, c0 = max(0, int(min(rows)) // size * size), max(0, int(min(cols)) // size * size)
    r1, c1 = min(geobox.shape.y, int(max(rows)) + 1), min(geobox.shape.x, int(max(cols)) + 1)
    window = geobox[r0:r1, c0:c1]
    cover = np.zeros(window.shape.yx, np.uint8)
    reproject(np.ones((hdr.height, hdr.width), np.uint8), cover, src_transform=Affine(*hdr.transform),
              src_crs=f"EPSG:{hdr.crs_epsg}", dst_transform=window.affine, dst_crs=str(geobox.crs),
              resampling=Resampling.nearest)
    ys, xs = np.nonzero(cover)
    found = {((y + r0) // size, (x + c0) // size) for y, x in zip(ys, xs)}
    assert found and found <= planned, sorted(found - planned)[:5]
