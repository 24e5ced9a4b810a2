"""Grid maths of rasteret_core.raster.grid: native alignment and overview choice (property tests)."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from odc.geo.geobox import GeoBox

from rasteret_core.cog import CogHeader
from rasteret_core.raster.grid import native_anchor, pick_overview


def header(width, height, res, x0, y0, overviews=()):
    tiles = -(-width // 256) * -(-height // 256)
    return CogHeader(url="mem://x", width=width, height=height, tile_width=256, tile_height=256,
                     samples_per_pixel=1, planar_configuration=1, dtype="uint16", bits_per_sample=16,
                     sample_format=1, compression=1, predictor=1, photometric=1,
                     tile_offsets=np.ones(tiles), tile_byte_counts=np.ones(tiles),
                     transform=(res, 0.0, x0, 0.0, -res, y0), crs_epsg=32633, overviews=overviews)


@settings(max_examples=200, deadline=None)
@given(res=st.sampled_from([10.0, 20.0, 30.0, 60.0, 100.0]), k=st.integers(1, 8),
       x0=st.integers(-10**6, 10**6), y0=st.integers(0, 10**7),
       bx=st.floats(0, 5000), by=st.floats(0, 5000), w=st.floats(1, 5000), h=st.floats(1, 5000))
def test_native_anchor_puts_output_edges_on_stored_pixel_edges(res, k, x0, y0, bx, by, w, h):
    hdr = header(1000, 1000, res, x0 * 10 / 3, y0 * 10 / 3)  # origins not multiples of res
    out_res = res * k
    region = shapely.box(hdr.transform[2] + bx, hdr.transform[5] - by - h, hdr.transform[2] + bx + w, hdr.transform[5] - by)
    from odc.geo.geom import Geometry

    gbox = GeoBox.from_geopolygon(Geometry(region, "EPSG:32633"), resolution=out_res, crs="EPSG:32633",
                                  anchor=native_anchor(hdr, out_res))
    dx = (gbox.affine.c - hdr.transform[2]) / res
    dy = (gbox.affine.f - hdr.transform[5]) / res
    assert abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6
    left, bottom, right, top = gbox.extent.geom.bounds
    slack = 0.0101 * out_res  # odc-geo may leave out up to 1 % of a pixel on each side
    r0, r1, r2, r3 = region.bounds
    assert left - slack <= r0 and bottom - slack <= r1 and r2 <= right + slack and r3 <= top + slack


@given(width=st.integers(64, 20000), factors=st.lists(st.sampled_from([2, 3, 4, 8, 16, 32]), unique=True, max_size=5),
       shrink=st.integers(1, 64))
def test_pick_overview_reads_the_coarsest_image_not_coarser_than_asked(width, factors, shrink):
    factors = sorted(factors)
    ovs = tuple(header(max(1, width // f), max(1, width // f), 10.0 * f, 0, 0) for f in factors)
    hdr = header(width, width, 10.0, 0, 0, overviews=ovs)
    pick = pick_overview(hdr, shrink)
    ratios = [width / o.width for o in ovs]
    allowed = [i for i, r in enumerate(ratios) if r <= shrink * (1 + 1e-6) and r > 1]
    if not allowed:
        assert pick is None
    else:
        assert pick is not None and ratios[pick] == max(ratios[i] for i in allowed)


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), oh=st.integers(1, 40), ow=st.integers(1, 40),
       dr=st.integers(-45, 45), dc=st.integers(-45, 45), res=st.sampled_from([10.0, 20.0, 60.0]),
       x0=st.integers(100_000, 800_000), y0=st.integers(1_000_000, 9_000_000))
def test_a_grid_shifted_by_whole_pixels_picks_what_rasterio_reproject_picks(h, w, oh, ow, dr, dc, res, x0, y0):
    # the copy taken for aligned grids against GDAL's nearest resampling on the same grids
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    from rasteret_core.raster.grid import sample_nearest

    data = np.arange(1, h * w + 1, dtype=np.uint16).reshape(h, w)
    src = Affine(res, 0, x0 * 1.0, 0, -res, y0 * 1.0)
    dst = src * Affine.translation(dc, dr)
    gbox = GeoBox((oh, ow), dst, "EPSG:32633")
    values, has = sample_nearest(data, src, 32633, gbox, 0)
    want = np.zeros((oh, ow), np.uint16)
    reproject(data, want, src_transform=src, src_crs="EPSG:32633", dst_transform=dst, dst_crs="EPSG:32633",
              resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    np.testing.assert_array_equal(values, want)
    np.testing.assert_array_equal(has, want != 0)


# --- the eager mosaic grid: cut to the images, AOI pixels counted on the uncut grid ----------
@settings(max_examples=150, deadline=None)
@given(origin=st.tuples(st.integers(-500, 500), st.integers(-500, 500)),
       windows=st.lists(st.tuples(st.integers(-300, 300), st.integers(-300, 300), st.integers(1, 200),
                                  st.integers(1, 200)), min_size=1, max_size=4))
def test_a_grid_cut_to_image_windows_is_their_pixel_bounding_box_within_the_aoi(origin, windows):
    """Windows on the grid's lattice (whole-pixel offsets, as the images' crops are): the cut keeps
    exactly the rows and columns between their outermost edges, inside the AOI's grid."""
    from affine import Affine

    from rasteret_core.raster.grid import crop_to_extents

    res, x0, y0 = 10.0, 600_000.0 + origin[0] * 10, 1_500_000.0 + origin[1] * 10
    aoi = GeoBox((250, 300), Affine(res, 0, x0, 0, -res, y0), "EPSG:32643")
    extents = [(Affine(res, 0, x0 + col * res, 0, -res, y0 - row * res), (h, w), "EPSG:32643")
               for row, col, h, w in windows]
    got = crop_to_extents(aoi, extents)
    r0, c0 = max(0, min(r for r, _, _, _ in windows)), max(0, min(c for _, c, _, _ in windows))
    r1 = min(250, max(r + h for r, _, h, _ in windows))
    c1 = min(300, max(c + w for _, c, _, w in windows))
    if r1 <= r0 or c1 <= c0:
        assert got is None
        return
    assert got.shape.yx == (r1 - r0, c1 - c0)
    assert tuple(got.affine)[:6] == tuple(Affine(res, 0, x0 + c0 * res, 0, -res, y0 - r0 * res))[:6]


@settings(max_examples=30, deadline=None)
@given(points=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=8),
       height=st.integers(1, 400), strip=st.integers(1, 5000))
def test_the_aoi_pixel_count_in_strips_equals_the_whole_mask(points, height, strip):
    """Any polygon and any strip height: the count equals rasterio's mask of the whole grid."""
    import pytest
    from affine import Affine
    from rasterio.features import geometry_mask

    import rasteret_core.raster.grid as grid

    gbox = GeoBox((height, 300), Affine(0.001, 0, 77.0, 0, -0.001, 13.0), "EPSG:4326")
    polygon = shapely.Polygon([(77.0 + 0.3 * x, 13.0 - 0.4 * y) for x, y in points]).buffer(0)
    if polygon.is_empty:
        return
    want = int((~geometry_mask([polygon], out_shape=(height, 300), transform=gbox.affine)).sum())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grid, "AOI_COUNT_STRIP", strip)
        assert grid.aoi_pixel_count(gbox, polygon) == want


def test_an_image_in_degrees_cut_on_a_metre_grid_keeps_every_pixel_it_covers():
    """The outline of a lon/lat image curves in UTM: its edges are projected point by point in the
    image's own units (before: only the corners, and 120 m of its south edge were cut at 10 m)."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    from rasteret_core.raster.grid import aoi_geobox, crop_to_extents

    image = (Affine(0.01, 0, 2.5, 0, -0.01, 45.5), (100, 100), "EPSG:4326")  # 2.5-3.5 E, 44.5-45.5 N
    whole = aoi_geobox(shapely.box(2.0, 44.0, 4.0, 46.0), "EPSG:32631", Affine(100, 0, 0, 0, -100, 0))
    got = crop_to_extents(whole, [image])
    cover = np.zeros(whole.shape.yx, np.uint8)
    reproject(np.ones((100, 100), np.uint8), cover, src_transform=image[0], src_crs="EPSG:4326",
              dst_transform=whole.affine, dst_crs="EPSG:32631", resampling=Resampling.nearest)
    rows, cols = np.nonzero(cover)
    r0 = round((got.affine.f - whole.affine.f) / whole.affine.e)
    c0 = round((got.affine.c - whole.affine.c) / whole.affine.a)
    assert r0 <= rows.min() and rows.max() < r0 + got.shape.y
    assert c0 <= cols.min() and cols.max() < c0 + got.shape.x
    assert got.shape.y < whole.shape.y and got.shape.x < whole.shape.x  # and it is a cut
