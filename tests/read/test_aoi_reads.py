"""AOI reads equal rasterio.mask.mask on the same file, with no header requests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
import rasterio.mask
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.warp import transform_geom
from shapely.geometry import shape

from rasteret_core.cog import read_header, ReadStats
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.raster.windows import aoi_window, tiles_of_window
from rasteret_core.read import GeometryError, named_geometries, read_aois

S2_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B04", "B08", "SCL"]


@pytest.fixture
def s2_scene(store):
    bands = {b: BandAsset(b, store.url("public", f"{S2_DIR}/{b}.tif"), read_header(store.url("public", f"{S2_DIR}/{b}.tif")))
             for b in BANDS}
    store.reset_stats()
    footprint = shapely.box(-10.0, 24.3, -8.9, 25.3)
    return Scene("S2A_29RKH_20200219_0_L2A", "sentinel-2-l2a", dt.datetime(2020, 2, 19, 11, tzinfo=dt.timezone.utc),
                 footprint, bands=bands)


def lonlat_polygon(header, fractions):
    """A polygon in lon/lat from fractional positions within the image."""
    a, _, c, _, e, f = header.transform
    pts = [(c + fx * header.width * a, f + fy * header.height * e) for fx, fy in fractions]
    utm = shapely.Polygon(pts)
    return shape(transform_geom(f"EPSG:{header.crs_epsg}", "EPSG:4326", utm.__geo_interface__))


def rasterio_mask(path, geom_lonlat):
    with rasterio.open(path) as src:
        geom = transform_geom("EPSG:4326", src.crs, geom_lonlat.__geo_interface__)
        out, transform = rasterio.mask.mask(src, [geom], crop=True)
    return out[0], transform


@pytest.mark.parametrize("fractions", [
    [(0.2, 0.3), (0.45, 0.32), (0.4, 0.6), (0.22, 0.5)],          # a field across tile edges
    [(0.01, 0.01), (0.05, 0.01), (0.05, 0.04), (0.01, 0.04)],      # a small farm in one tile
    [(0.9, 0.9), (1.2, 0.9), (1.2, 1.2), (0.9, 1.2)],              # hanging over the image edge
])
def test_clipped_pixels_equal_rasterio_mask(s2_scene, store, shared_fixtures_dir, fractions):
    geom = lonlat_polygon(s2_scene.bands["B04"].header, fractions)
    stats = ReadStats()
    result = read_aois([s2_scene], {"field": geom}, BANDS, stats=stats)
    assert not result.failures and len(result.rasters) == 3
    for raster in result.rasters:
        expected, transform = rasterio_mask(shared_fixtures_dir / S2_DIR / f"{raster.band}.tif", geom)
        np.testing.assert_array_equal(raster.data, expected)
        assert tuple(raster.transform)[:6] == pytest.approx(tuple(transform)[:6])
    assert stats.header_requests == 0
    assert all(r.range and r.status == 206 for r in store.requests_for())
    tiles = sum(len(tiles_of_window(s2_scene.bands[r.band].header, aoi_window(s2_scene.bands[r.band].header,
                shape(transform_geom("EPSG:4326", f"EPSG:{r.crs_epsg}", geom.__geo_interface__))).window))
                for r in result.rasters)
    assert stats.requests <= tiles and stats.tiles_read == tiles


def test_geometry_outside_the_scene_reads_nothing(s2_scene, store):
    far = shapely.box(100.0, 10.0, 100.1, 10.1)
    result = read_aois([s2_scene], {"far": far}, ["B04"])
    assert result.rasters == [] and store.stats.requests == 0


def test_failed_band_is_reported_and_others_read(s2_scene, store):
    bands = dict(s2_scene.bands)
    bands["B08"] = BandAsset("B08", "x", None, error="HttpStatusError: 404")
    scene = Scene(s2_scene.id, s2_scene.collection, s2_scene.datetime, s2_scene.geometry, bands=bands)
    geom = lonlat_polygon(bands["B04"].header, [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2), (0.1, 0.2)])
    result = read_aois([scene], {"a": geom}, ["B04", "B08"])
    assert [r.band for r in result.rasters] == ["B04"]
    assert [(f.band, f.error) for f in result.failures] == [("B08", "HttpStatusError: 404")]


@pytest.mark.parametrize("bad, reason", [
    (shapely.Point(77.5, 13.0), "Point"),
    (shapely.LineString([(0, 0), (1, 1)]), "LineString"),
    (shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)]), "invalid"),
    (shapely.Polygon(), "empty"),
])
def test_unusable_geometries_are_refused_clearly(bad, reason):
    with pytest.raises(GeometryError, match=reason):
        named_geometries([bad])


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 3000), height=st.integers(1, 3000), tile=st.sampled_from([16, 256, 512, 1024]),
    x0=st.floats(-0.5, 1.2), y0=st.floats(-0.5, 1.2), w=st.floats(0.001, 1.5), h=st.floats(0.001, 1.5),
)
def test_aoi_window_lies_in_the_image_and_its_tiles_cover_it(width, height, tile, x0, y0, w, h):
    from rasteret_core.cog import CogHeader

    across, down = -(-width // tile), -(-height // tile)
    header = CogHeader(url="mem://x", width=width, height=height, tile_width=tile, tile_height=tile,
                       samples_per_pixel=1, planar_configuration=1, dtype="uint16", bits_per_sample=16,
                       sample_format=1, compression=1, predictor=1, photometric=1,
                       tile_offsets=np.ones(across * down), tile_byte_counts=np.ones(across * down),
                       transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), crs_epsg=32633)
    geom = shapely.box(500000 + x0 * width * 10, 4000000 - (y0 + h) * height * 10,
                       500000 + (x0 + w) * width * 10, 4000000 - y0 * height * 10)
    crop = aoi_window(header, geom)
    if crop is None:
        return
    win = crop.window
    assert 0 <= win.col_off and win.col_off + win.width <= width
    assert 0 <= win.row_off and win.row_off + win.height <= height
    tiles = tiles_of_window(header, win)
    rows = {r for r, _ in tiles}
    cols = {c for _, c in tiles}
    assert min(rows) * tile <= win.row_off and (max(rows) + 1) * tile >= win.row_off + win.height
    assert min(cols) * tile <= win.col_off and (max(cols) + 1) * tile >= win.col_off + win.width
    assert all(0 <= r < down and 0 <= c < across for r, c in tiles)
