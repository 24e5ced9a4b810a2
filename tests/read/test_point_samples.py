"""Point samples equal rasterio's sample on the same files, through stored headers only."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import shapely
from rasterio.warp import transform
from rasterio.windows import Window

from rasteret_core import DataSources, Rasteret
from rasteret_core.cog import ReadStats, read_header
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.read import GeometryError, sample_points
from rasteret_core.read.points import SAMPLE_SCHEMA, named_points
from tests.collection.conftest import EPSG, S2_BAND_MAP, make_s2_scenes

S2_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
INT16 = "rio-tiler/tests/fixtures/cog_int16.tif"  # nodata -32768 over about half the image
BANDS = ["B04", "B08", "SCL"]
WHEN = dt.datetime(2020, 2, 19, 11, tzinfo=dt.timezone.utc)


def scene_of(store, files: dict[str, str], scene_id="S2A_29RKH_20200219_0_L2A", **asset_kwargs):
    bands = {b: BandAsset(b, store.url("public", rel), read_header(store.url("public", rel)), **asset_kwargs)
             for b, rel in files.items()}
    store.reset_stats()
    return Scene(scene_id, "sentinel-2-l2a", WHEN, shapely.box(-180, -90, 180, 90), bands=bands)


def lonlat_points(path, fractions):
    """Lon/lat points at fractional positions of an image."""
    with rasterio.open(path) as src:
        b = src.bounds
        xs = [b.left + fx * (b.right - b.left) for fx, _ in fractions]
        ys = [b.top - fy * (b.top - b.bottom) for _, fy in fractions]
        lons, lats = transform(src.crs, "EPSG:4326", xs, ys)
    return {f"p{i}": (lon, lat) for i, (lon, lat) in enumerate(zip(lons, lats))}


def rasterio_sample(path, lonlat):
    with rasterio.open(path) as src:
        xs, ys = transform("EPSG:4326", src.crs, [p[0] for p in lonlat], [p[1] for p in lonlat])
        return [float(v[0]) for v in src.sample(list(zip(xs, ys)))]


@pytest.fixture
def s2_scene(store):
    return scene_of(store, {b: f"{S2_DIR}/{b}.tif" for b in BANDS})


def test_point_values_equal_rasterio_sample_with_one_fetch_per_tile(s2_scene, store, shared_fixtures_dir):
    rng = np.random.default_rng(7)
    # clusters of points in a few tiles, so many points share each tile
    centres = [(0.1, 0.1), (0.3, 0.8), (0.7, 0.4), (0.97, 0.97)]
    fractions = [(min(cx + dx, 0.999), min(cy + dy, 0.999)) for cx, cy in centres
                 for dx, dy in rng.uniform(0, 0.02, (6, 2))]
    points = lonlat_points(shared_fixtures_dir / S2_DIR / "B04.tif", fractions)
    stats = ReadStats()
    result = sample_points([s2_scene], points, BANDS, stats=stats)
    assert not result.failures and len(result) == len(points) * len(BANDS)
    table = result.to_arrow()
    assert table.schema == SAMPLE_SCHEMA
    for band in BANDS:
        rows = table.filter(pa.compute.equal(table["band"], band)).to_pylist()
        got = {r["point_id"]: r["value"] for r in rows}
        expected = rasterio_sample(shared_fixtures_dir / S2_DIR / f"{band}.tif", list(points.values()))
        assert [got[k] for k in points] == expected
    # zero header requests; each distinct tile decoded once, in at most one request per tile
    header = s2_scene.bands["B04"].header
    distinct = 0
    for band in BANDS:
        h = s2_scene.bands[band].header
        cells = {(r["row"] // h.tile_height, r["col"] // h.tile_width) for r in table.to_pylist() if r["band"] == band}
        distinct += len(cells)
    assert stats.header_requests == 0 and stats.tiles_read == distinct
    assert 0 < store.stats.requests == stats.requests <= distinct
    assert header.tile_width == 512


def test_distance_is_to_the_pixel_centre(s2_scene, shared_fixtures_dir):
    points = lonlat_points(shared_fixtures_dir / S2_DIR / "B04.tif", [(0.4, 0.6), (0.55, 0.21)])
    table = sample_points([s2_scene], points, ["B04"]).to_arrow().to_pylist()
    with rasterio.open(shared_fixtures_dir / S2_DIR / "B04.tif") as src:
        for r in table:
            x, y = transform("EPSG:4326", src.crs, [points[r["point_id"]][0]], [points[r["point_id"]][1]])
            assert (r["row"], r["col"]) == src.index(x[0], y[0])
            cx, cy = src.xy(r["row"], r["col"])
            assert r["distance"] == pytest.approx(np.hypot(cx - x[0], cy - y[0]))
            assert r["distance"] <= np.hypot(*src.res) / 2 + 1e-6


def test_neighbourhood_equals_the_rasterio_window(s2_scene, shared_fixtures_dir):
    points = lonlat_points(shared_fixtures_dir / S2_DIR / "B04.tif", [(0.466, 0.466), (0.2, 0.9)])  # one at a tile corner
    result = sample_points([s2_scene], points, ["B04"], neighbourhood=5)
    table = result.to_arrow().to_pylist()
    assert len(table) == 2 * 25
    with rasterio.open(shared_fixtures_dir / S2_DIR / "B04.tif") as src:
        for pid, (lon, lat) in points.items():
            x, y = transform("EPSG:4326", src.crs, [lon], [lat])
            row, col = src.index(x[0], y[0])
            block = src.read(1, window=Window(col - 2, row - 2, 5, 5))
            got = np.full((5, 5), -1.0)
            for r in table:
                if r["point_id"] == pid:
                    got[r["row"] - row + 2, r["col"] - col + 2] = r["value"]
            np.testing.assert_array_equal(got, block)


def brute_force_nearest_valid(path, lon, lat, max_distance):
    """Search every pixel of the file for the valid one nearest to the point (row-major ties)."""
    with rasterio.open(path) as src:
        data = src.read(1)
        x, y = transform("EPSG:4326", src.crs, [lon], [lat])
        rows, cols = np.mgrid[0 : src.height, 0 : src.width]
        cx, cy = src.transform * (cols + 0.5, rows + 0.5)
        dist = np.hypot(cx - x[0], cy - y[0])
        ok = (data != src.nodata) & (dist <= max_distance)
        if not ok.any():
            return None
        flat = int(np.argmin(np.where(ok, dist, np.inf)))
        r, c = np.unravel_index(flat, data.shape)
        return float(data[r, c]), int(r), int(c), float(dist[r, c])


def test_nearest_valid_pixel_equals_brute_force_search(store, shared_fixtures_dir):
    path = shared_fixtures_dir / INT16
    with rasterio.open(path) as src:
        data = src.read(1)
        nodata = src.nodata
    # points on nodata pixels near the data's edge, on valid pixels, and far from any data
    rng = np.random.default_rng(3)
    invalid = np.argwhere(data == nodata)
    edge = invalid[(invalid[:, 1] > 5) & (data[invalid[:, 0], np.maximum(invalid[:, 1] - 5, 0)] != nodata)]
    picks = list(edge[rng.choice(len(edge), 8, replace=False)]) + list(np.argwhere(data != nodata)[rng.choice(50, 2)])
    picks.append(invalid[np.argmax(np.abs(invalid[:, 1] - data.shape[1] / 2) + invalid[:, 0])])  # likely far from data
    fractions = [((c + rng.uniform(0.05, 0.95)) / data.shape[1], (r + rng.uniform(0.05, 0.95)) / data.shape[0])
                 for r, c in picks]
    points = lonlat_points(path, fractions)
    scene = scene_of(store, {"B1": INT16})
    max_distance = 650.0
    table = sample_points([scene], points, ["B1"], max_distance=max_distance).to_arrow().to_pylist()
    assert len(table) == len(points)
    for r in table:
        lon, lat = points[r["point_id"]]
        truth = brute_force_nearest_valid(path, lon, lat, max_distance)
        if truth is None:
            assert r["value"] is None and not r["valid"]
        else:
            assert r["valid"] and (r["value"], r["row"], r["col"]) == truth[:3]
            assert r["distance"] == pytest.approx(truth[3])
    assert any(r["distance"] and r["distance"] > 100 for r in table)  # some points did move
    assert any(r["value"] is None for r in table)  # and one has no valid pixel within reach


def test_physical_values_apply_the_band_scale_and_offset_and_null_nodata(store, shared_fixtures_dir):
    path = shared_fixtures_dir / INT16
    scene = scene_of(store, {"B1": INT16}, scale=0.5, offset=10.0)
    with rasterio.open(path) as src:
        data = src.read(1)
    valid = np.argwhere(data != -32768)[::50000][:3]
    invalid = np.argwhere(data == -32768)[::90000][:2]
    fractions = [((c + 0.5) / data.shape[1], (r + 0.5) / data.shape[0]) for r, c in [*valid, *invalid]]
    points = lonlat_points(path, fractions)
    raw = sample_points([scene], points, ["B1"]).to_arrow().to_pylist()
    phys = sample_points([scene], points, ["B1"], physical=True).to_arrow().to_pylist()
    for a, b in zip(raw, phys):
        assert a["valid"] == b["valid"]
        assert b["value"] == (a["value"] * 0.5 + 10.0 if a["valid"] else None)
    assert sum(r["valid"] for r in raw) == 3


def test_points_outside_every_image_say_so(s2_scene, store):
    result = sample_points([s2_scene], [(100.0, 10.0)], ["B04"])
    assert len(result) == 0 and store.stats.requests == 0
    assert "no point lies inside" in result.notes[0]


@pytest.mark.parametrize("points, message", [
    ([shapely.box(0, 0, 1, 1)], "not a point"),
    ([(12.9, 95.0)], "not a lon/lat position"),
    ([], "no points"),
])
def test_bad_points_are_refused(points, message):
    with pytest.raises(GeometryError, match=message):
        named_points(points)


def test_options_are_checked(s2_scene):
    with pytest.raises(ValueError, match="odd"):
        sample_points([s2_scene], [(-9.5, 24.8)], ["B04"], neighbourhood=2)
    with pytest.raises(ValueError, match="not both"):
        sample_points([s2_scene], [(-9.5, 24.8)], ["B04"], neighbourhood=3, max_distance=10)


def test_rasteret_sample_points_gives_a_time_series_as_geodataframe(tmp_path):
    items = make_s2_scenes(tmp_path / "scenes")
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    source = DataSources.from_items_file(path, S2_BAND_MAP, name="s2-local", short_name="s2local")
    r = Rasteret("pts", source, ("2024-01-01", "2024-01-31"), workspace_dir=tmp_path / "ws", progress=False)
    r.create_collection(bbox=(77.0, 12.0, 78.5, 14.0))
    lon, lat = transform(f"EPSG:{EPSG}", "EPSG:4326", [771003.0], [1436011.0])
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"name": ["farm"]}, geometry=gpd.points_from_xy(lon, lat), crs=4326, index=["farm"])
    samples = r.sample_points(frame, ["B04", "B08"], physical=True)
    gdf = samples.to_geodataframe()
    assert list(gdf.columns[:6]) == ["point_id", "datetime", "scene_id", "band", "value", "valid"]
    assert gdf.crs.to_epsg() == 4326 and set(gdf.point_id) == {"farm"}
    assert sorted(gdf.datetime.dt.day.unique()) == [5, 10, 15]  # the tile-0 scene of each date
    assert len(gdf) == 3 * 2 and r.last_stats.header_requests == 0
    for row in gdf.itertuples():
        scene_dir = tmp_path / "scenes" / row.scene_id
        raw = rasterio_sample(scene_dir / ("B04.tif" if row.band == "B04" else "B08.tif"), [(lon[0], lat[0])])[0]
        assert row.value == pytest.approx(raw * 0.0001 - 0.1)
