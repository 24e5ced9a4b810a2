"""Fixtures for collection tests: small Sentinel-2-like COGs written by rasterio, and their items.

The scenes imitate Earth Search ``sentinel-2-l2a`` items (asset keys ``red``, ``nir``,
``scl``; ``raster:bands`` scale/offset; ``proj:*`` per asset) over two UTM tiles on three
dates, with varied cloud cover and platforms, so search filters have something to separate.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from affine import Affine

SHARED_DIR = Path(os.environ.get("RASTERET_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))
FIXTURES = SHARED_DIR / "fixtures"
S2_FIXTURE_DIR = (
    FIXTURES / "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
)
S2_FIXTURE_ITEM = S2_FIXTURE_DIR / "S2A_29RKH_20200219_0_L2A.json"
LANDSAT_ITEMS = [
    FIXTURES / "odc-stac/tests/data/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json",
    FIXTURES / "odc-stac/tests/data/LE07_L2SP_044033_20210329_20210424_02_T1_SR.json",
]
PC_S2_ITEMS = FIXTURES / "stac-geoparquet/tests/data/sentinel-2-l2a-pc.json"
NAIP_PARQUET = FIXTURES / "stac-geoparquet/tests/data/naip.parquet"

S2_BAND_MAP = {"B04": "red", "B08": "nir", "SCL": "scl"}
EPSG = 32643  # UTM 43N, around Bangalore


@dataclass(frozen=True)
class SyntheticScene:
    id: str
    datetime: dt.datetime
    cloud_cover: float
    platform: str
    tile_origin: tuple[float, float]


# (day, tile index, cloud cover, platform): 3 dates x 2 tiles
_PLAN = [
    (5, 0, 5.0, "sentinel-2a"), (5, 1, 35.0, "sentinel-2a"),
    (10, 0, 12.5, "sentinel-2b"), (10, 1, 9.0, "sentinel-2b"),
    (15, 0, 80.0, "sentinel-2a"), (15, 1, 100.0, "sentinel-2a"),
]
_TILES = [(770000.0, 1440000.0), (780240.0, 1440000.0)]  # 10.24 km apart: disjoint footprints
SIZE = 512  # pixels of the 10 m bands; SCL is 20 m (256 px)


def _write_cog(path: Path, data: np.ndarray, transform, nodata: float = 0) -> None:
    profile = dict(
        driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
        crs=f"EPSG:{EPSG}", transform=transform, nodata=nodata, compress="DEFLATE", predictor=2,
        blocksize=256, overview_resampling="nearest",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _footprint(transform, width: int, height: int) -> dict:
    to_lonlat = Transformer.from_crs(EPSG, 4326, always_xy=True)
    x0, y0, x1, y1 = transform.c, transform.f, transform.c + width * transform.a, transform.f + height * transform.e
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    ring = [list(to_lonlat.transform(x, y)) for x, y in corners]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def make_s2_scenes(root: Path, *, href_prefix: str | None = None) -> list[dict]:
    """Write the synthetic COGs under ``root`` and return their STAC items (Earth Search style).

    Hrefs are local paths, or ``href_prefix + relative path`` when given (for servers).
    """
    rng = np.random.default_rng(42)
    items = []
    for day, tile, cloud, platform in _PLAN:
        when = dt.datetime(2024, 1, day, 5, 10, 30, tzinfo=dt.timezone.utc)
        scene_id = f"S2{platform[-1].upper()}_43PGQ{tile}_{when:%Y%m%d}_0_L2A"
        folder = root / scene_id
        folder.mkdir(parents=True, exist_ok=True)
        x0, y0 = _TILES[tile]
        t10 = Affine(10, 0, x0, 0, -10, y0)
        t20 = Affine(20, 0, x0, 0, -20, y0)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        assets = {}
        for key, band_no, data, transform in (
            ("red", 4, (1000 + 3 * xx + 2 * yy + day * 7 + rng.integers(0, 50, (SIZE, SIZE))).astype("uint16"), t10),
            ("nir", 8, (2000 + 2 * xx + 3 * yy + day * 5 + rng.integers(0, 50, (SIZE, SIZE))).astype("uint16"), t10),
            ("scl", None, ((xx[::2, ::2] // 32 + yy[::2, ::2] // 32) % 11 + 1).astype("uint8"), t20),
        ):
            name = f"B{band_no:02d}.tif" if band_no else "SCL.tif"
            data[:3, :3] = 0  # a few nodata pixels in a corner
            _write_cog(folder / name, data, transform)
            rel = f"{scene_id}/{name}"
            href = str(folder / name) if href_prefix is None else f"{href_prefix.rstrip('/')}/{rel}"
            raster = {"nodata": 0, "data_type": data.dtype.name, "spatial_resolution": transform.a}
            if key != "scl":
                raster.update(scale=0.0001, offset=-0.1)
            assets[key] = {
                "href": href,
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "proj:shape": list(data.shape),
                "proj:transform": [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f],
                "raster:bands": [raster],
                "roles": ["data"],
            }
        geometry = _footprint(t10, SIZE, SIZE)
        xs = [p[0] for p in geometry["coordinates"][0]]
        ys = [p[1] for p in geometry["coordinates"][0]]
        items.append({
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": [],
            "id": scene_id,
            "collection": "sentinel-2-l2a",
            "geometry": geometry,
            "bbox": [min(xs), min(ys), max(xs), max(ys)],
            "properties": {
                "datetime": when.isoformat().replace("+00:00", "Z"),
                "platform": platform,
                "constellation": "sentinel-2",
                "eo:cloud_cover": cloud,
                "proj:epsg": EPSG,
                "s2:processing_baseline": "05.10",
            },
            "links": [],
            "assets": assets,
        })
    return items


@pytest.fixture(scope="session")
def s2_scene_dir(tmp_path_factory) -> Path:
    """Folder holding the synthetic COGs (written once per session)."""
    root = tmp_path_factory.mktemp("s2_scenes")
    items = make_s2_scenes(root)
    (root / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return root


@pytest.fixture
def s2_items(s2_scene_dir) -> list[dict]:
    """The synthetic items with local-path hrefs (a fresh copy per test)."""
    return copy.deepcopy(json.loads((s2_scene_dir / "items.json").read_text())["features"])


@pytest.fixture
def s2_items_file(s2_scene_dir) -> Path:
    return s2_scene_dir / "items.json"


@pytest.fixture
def real_s2_item() -> dict:
    """The real Earth Search item of the rio-tiler-pds scene, hrefs pointing at the local copies."""
    if not S2_FIXTURE_ITEM.is_file():
        pytest.skip(f"shared fixtures not found at {FIXTURES} (set RASTERET_SHARED_DIR)")
    item = json.loads(S2_FIXTURE_ITEM.read_text())
    for asset in item["assets"].values():
        name = asset["href"].rsplit("/", 1)[-1]
        asset["href"] = str(S2_FIXTURE_DIR / name)
    return item
