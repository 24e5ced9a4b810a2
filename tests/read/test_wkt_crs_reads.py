"""An image whose CRS has no EPSG code is read, clipped and written with that CRS (as WKT)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import rasterio
import rasterio.mask
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform, transform_geom
from shapely.geometry import shape

from rasteret_core.cog import read_header
from rasteret_core.collection.scene import BandAsset, Scene
from rasteret_core.products.outputs import save_per_geometry
from rasteret_core.read import per_geometry_datasets, read_aois

# Albers equal-area on NAD83 with non-standard parallels: no EPSG code matches it
ALBERS = "+proj=aea +lat_0=40 +lon_0=-97 +lat_1=31 +lat_2=49 +x_0=0 +y_0=0 +datum=NAD83 +units=m +no_defs"


def _albers_file(path) -> str:
    data = (np.arange(300 * 260) % 997).reshape(1, 260, 300).astype("uint16")
    with rasterio.open(path, "w", driver="COG", width=300, height=260, count=1, dtype="uint16", crs=ALBERS,
                       transform=from_origin(-200_000, 300_000, 30, 30), compress="DEFLATE", blocksize=64,
                       nodata=0) as dst:
        dst.write(data)
    return str(path)


def test_aoi_read_on_a_crs_without_epsg_equals_rasterio_mask_and_keeps_the_crs(tmp_path):
    path = _albers_file(tmp_path / "albers.tif")
    header = read_header(path)
    assert header.crs_epsg is None and header.crs_wkt
    with rasterio.open(path) as src:
        assert CRS.from_wkt(header.crs_wkt) == src.crs
        field = shapely.box(-195_000, 295_000, -190_500, 292_000).buffer(600)
        lonlat = shape(transform_geom(src.crs, "EPSG:4326", field.__geo_interface__))
        expected, transform = rasterio.mask.mask(src, [transform_geom("EPSG:4326", src.crs, lonlat.__geo_interface__)],
                                                 crop=True)
    scene = Scene("albers-scene", "test", dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc), lonlat.buffer(1),
                  bands={"B1": BandAsset("B1", path, header)})
    result = read_aois([scene], {"field": lonlat}, ["B1"])
    assert not result.failures and len(result.rasters) == 1
    raster = result.rasters[0]
    np.testing.assert_array_equal(raster.data, expected[0])
    assert tuple(raster.transform)[:6] == tuple(transform)[:6]
    assert raster.crs_epsg is None and CRS.from_wkt(raster.crs) == CRS.from_wkt(header.crs_wkt)

    ds = per_geometry_datasets(result.rasters, ["B1"], [scene], {"field": lonlat})["field"]
    assert "epsg" not in ds.spatial_ref.attrs
    assert CRS.from_wkt(ds.spatial_ref.attrs["crs_wkt"]) == CRS.from_wkt(header.crs_wkt)
    # the Dataset's grid is rasterio.mask's crop: this AOI crosses the image's edge, and the
    # grid stops there, as rasterio.mask(crop=True) stops at the dataset's edge
    [written] = save_per_geometry(ds, tmp_path / "out")
    with rasterio.open(written) as out:
        assert out.crs == CRS.from_wkt(header.crs_wkt)
        assert tuple(out.transform)[:6] == tuple(transform)[:6]
        np.testing.assert_array_equal(out.read(1), expected[0])
    assert float(ds.coverage[0]) < 1  # the AOI's part beyond the image is counted as uncovered


def test_point_samples_on_a_crs_without_epsg_equal_rasterio_sample(tmp_path):
    from rasteret_core.read import sample_points

    path = _albers_file(tmp_path / "albers.tif")
    header = read_header(path)
    xy = [(-199_000.0 + 37 * i, 299_000.0 - 53 * i) for i in range(5)]
    with rasterio.open(path) as src:
        expected = [float(v[0]) for v in src.sample(xy)]
        lon, lat = transform(src.crs, "EPSG:4326", [p[0] for p in xy], [p[1] for p in xy])
    scene = Scene("albers-scene", "test", dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
                  shapely.box(min(lon) - 1, min(lat) - 1, max(lon) + 1, max(lat) + 1),
                  bands={"B1": BandAsset("B1", path, header)})
    points = {f"p{i}": (lon[i], lat[i]) for i in range(5)}
    result = sample_points([scene], points, ["B1"])
    assert not result.failures
    values = dict(zip(result.table.column("point_id").to_pylist(), result.table.column("value").to_pylist()))
    assert [values[f"p{i}"] for i in range(5)] == expected
