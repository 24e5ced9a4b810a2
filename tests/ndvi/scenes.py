"""Scenes for the mosaic tests, derived from the REAL Sentinel-2 L2A scene of the shared fixtures
(rio-tiler-pds' S2A_29RKH_20200219_0_L2A: its Earth Search v1 item and its B04/B08/SCL COGs).

- ``A``: the real item and COGs, unchanged (baseline 02.14: no offset), dated 2024-01-05.
- ``B``: the adjacent tile of the same overpass, 60 km east on the same UTM lattice, with a
  slanted swath-edge nodata strip on its western side and one extra cloud box. Its item says what
  current Earth Search items say (baseline 05.11, ``earthsearch:boa_offset_applied: true``,
  ``raster:bands`` offset -0.1: the offset must not be applied). Least cloud: it wins first.
- ``C``: a tile of the same overpass in the next UTM zone west (EPSG:32628), A's pixels (from 60 km
  further west) warped there, ending just past A's west edge, most cloud: it fills only what A and B leave.
- ``D``: a later orbit over A's tile on another date (2024-01-10): baseline 05.10, flag false,
  pixels carrying BOA_ADD_OFFSET (+1000 DN), NIR changed so its NDVI differs from A's.

Pixels of B, C and D are written as COGs in a temporary folder; A's are the fixture files.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_geom
from shapely.geometry import mapping, shape

from tests.helpers.servers import FIXTURES

REAL_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
REAL_ITEM = FIXTURES / REAL_DIR / "S2A_29RKH_20200219_0_L2A.json"
BANDS = {"B04": "red", "B08": "nir", "SCL": "scl"}
DAY1, DAY2 = "2024-01-05", "2024-01-10"


@dataclass
class TestScene:
    id: str
    item: dict
    files: dict[str, Path]  # band code -> local file (the truth reads these with rasterio)
    cloud: float
    offset: float  # the reflectance offset the docs' rule gives this item (truth side)


def _write_cog(path: Path, data: np.ndarray, transform: Affine, epsg: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype.name, crs=f"EPSG:{epsg}", transform=transform, nodata=0,
                       compress="DEFLATE", blocksize=512, overview_resampling="nearest") as dst:
        dst.write(data, 1)


def _footprint(transform: Affine, shape_yx, epsg: int) -> dict:
    h, w = shape_yx
    box = shapely.box(transform.c, transform.f + h * transform.e, transform.c + w * transform.a, transform.f)
    return transform_geom(f"EPSG:{epsg}", "EPSG:4326", mapping(box))


def _item(base: dict, scene_id: str, when: str, hrefs: dict[str, str], footprint: dict, epsg: int,
          cloud: float, props: dict) -> dict:
    item = copy.deepcopy(base)
    item["id"] = scene_id
    item["geometry"] = footprint
    item["bbox"] = list(shape(footprint).bounds)
    item["properties"].update({"datetime": when, "eo:cloud_cover": cloud, "proj:epsg": epsg, **props})
    for code, key in BANDS.items():
        asset = item["assets"][key]
        asset["href"] = hrefs[code]
        for k in ("proj:shape", "proj:transform", "proj:bbox", "proj:epsg", "proj:code"):
            asset.pop(k, None)
    item["assets"] = {k: v for k, v in item["assets"].items() if k in BANDS.values()}
    return item


def build(folder: Path, url) -> list[TestScene]:
    """Write B, C, D under ``folder`` and return A..D with hrefs ``url(bucket, key)``."""
    base = json.loads(REAL_ITEM.read_text())
    src = {}
    for code in BANDS:
        with rasterio.open(FIXTURES / REAL_DIR / f"{code}.tif") as ds:
            src[code] = (ds.read(1), ds.transform)
    t10, t20 = src["B04"][1], src["SCL"][1]
    scenes = []

    hrefs = {c: url("public", f"{REAL_DIR}/{c}.tif") for c in BANDS}
    a = _item(base, "S2A_29RKH_20240105_0_L2A", f"{DAY1}T11:34:25Z", hrefs, _footprint(t10, src["B04"][0].shape, 32629),
              32629, 20.0, {})
    scenes.append(TestScene(a["id"], a, {c: FIXTURES / REAL_DIR / f"{c}.tif" for c in BANDS}, 20.0, 0.0))

    # B: 600 columns (60 km) east; its pixels where it overlaps A are A's (x1.05), beyond A they wrap
    shift = 600
    files, arrays = {}, {}
    for code in ("B04", "B08"):
        data = src[code][0]
        rolled = np.roll(data, -shift, axis=1).astype(np.float64) * 1.05
        arrays[code] = np.clip(np.rint(rolled), 0, 65535).astype(np.uint16)
    rows, cols = np.mgrid[0:arrays["B04"].shape[0], 0:arrays["B04"].shape[1]]
    strip = cols < 50 + 0.05 * rows  # the swath edge: a slanted band without data
    for code in ("B04", "B08"):
        arrays[code][strip] = 0
    scl = np.roll(src["SCL"][0], -shift // 2, axis=1).copy()
    r2, c2 = np.mgrid[0:scl.shape[0], 0:scl.shape[1]]
    scl[(2 * c2 + 1) < 50 + 0.05 * (2 * r2 + 1)] = 0
    scl[120:125, 30:40] = 9  # a cloud over the swath AOI that A does not have
    arrays["SCL"] = scl
    tb10 = t10 * Affine.translation(shift, 0)
    tb20 = t20 * Affine.translation(shift // 2, 0)
    for code, data in arrays.items():
        files[code] = folder / "B" / f"{code}.tif"
        _write_cog(files[code], data, tb10 if code != "SCL" else tb20, 32629)
    hrefs = {c: url("scenes", f"B/{c}.tif") for c in BANDS}
    b = _item(base, "S2A_29RLH_20240105_0_L2A", f"{DAY1}T11:34:27Z", hrefs, _footprint(tb10, arrays["B04"].shape, 32629),
              32629, 3.0, {"s2:processing_baseline": "05.11", "earthsearch:boa_offset_applied": True})
    for key in ("red", "nir"):
        b["assets"][key]["raster:bands"][0]["offset"] = -0.1
    scenes.append(TestScene(b["id"], b, files, 3.0, 0.0))

    # C: the next UTM zone west; A's pixels warped to EPSG:32628 and moved so C ends at lon -11.955
    from pyproj import Transformer

    to28 = Transformer.from_crs(4326, 32628, always_xy=True)
    east, _ = to28.transform(-11.955, 24.8)  # a little past A's slanted west edge at the AOI
    _, north = to28.transform(-12.3, 25.35)
    width, height = 300, 1150
    tc10 = Affine(100, 0, round(east / 100) * 100 - width * 100, 0, -100, round(north / 100) * 100)
    tc20 = Affine(200, 0, tc10.c, 0, -200, tc10.f)
    files, arrays = {}, {}
    for code in BANDS:
        data, transform = src[code]
        res = 200 if code == "SCL" else 100
        dst_t = tc20 if code == "SCL" else tc10
        out = np.zeros((height * 100 // res, width * 100 // res), dtype=data.dtype)
        # A's pixels, placed 60 km further west before warping: real values, another place
        moved = transform * Affine.translation(-60_000 / transform.a, 0)
        reproject(data, out, src_transform=moved, src_crs="EPSG:32629", dst_transform=dst_t, dst_crs="EPSG:32628",
                  resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
        arrays[code] = out
        files[code] = folder / "C" / f"{code}.tif"
        _write_cog(files[code], out, dst_t, 32628)
    hrefs = {c: url("scenes", f"C/{c}.tif") for c in BANDS}
    c = _item(base, "S2A_28RGN_20240105_0_L2A", f"{DAY1}T11:34:30Z", hrefs, _footprint(tc10, (height, width), 32628),
              32628, 60.0, {})
    scenes.append(TestScene(c["id"], c, files, 60.0, 0.0))

    # D: a later orbit of A's tile; processing baseline 05.10: pixels carry +1000 DN
    files = {}
    for code in BANDS:
        data, transform = src[code]
        if code == "SCL":
            out = data
        else:
            factor = 0.9 if code == "B08" else 1.0
            out = np.where(data > 0, np.rint(data * factor) + 1000, 0).astype(np.uint16)
        files[code] = folder / "D" / f"{code}.tif"
        _write_cog(files[code], out, transform, 32629)
    hrefs = {c: url("scenes", f"D/{c}.tif") for c in BANDS}
    d = _item(base, "S2B_29RKH_20240110_0_L2A", f"{DAY2}T11:24:19Z", hrefs, _footprint(t10, src["B04"][0].shape, 32629),
              32629, 10.0, {"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": False})
    scenes.append(TestScene(d["id"], d, files, 10.0, -0.1))
    return scenes


def utm_box(epsg: int, x0: float, y0: float, x1: float, y1: float):
    return shape(transform_geom(f"EPSG:{epsg}", "EPSG:4326", mapping(shapely.box(x0, y0, x1, y1))))


AOIS = {
    # across B's swath edge, inside A: B wins where it has clear data, A fills the strip and B's cloud
    "swath": utm_box(32629, 262000, 2794000, 270000, 2798000),
    # across A's west edge at the UTM zone line: mostly A (EPSG:32629 grid), the rest from C (32628)
    "zone": shape({"type": "Polygon", "coordinates": [[(-11.985, 24.80), (-11.90, 24.80), (-11.90, 24.83),
                                                      (-11.985, 24.83), (-11.985, 24.80)]]}),
    # across A's (and B's) north edge, west of B: half of it outside every scene
    "half_outside": utm_box(32629, 240000, 2798020, 246000, 2802020),
    # one pixel: its box holds exactly one 100 m pixel centre of A's lattice
    "one_pixel": utm_box(32629, 230000, 2769940, 230060, 2770000),
}
SCL_MASKED = (0, 1, 3, 8, 9, 10)  # the classes the docs say are masked


def mosaic_cut(scenes: list[TestScene], aoi, epsg: int, transform: Affine, shape_yx: tuple[int, int]):
    """Rows and columns of the AOI's grid that ``rasterio.mask(crop=True)`` keeps on a VRT of the
    scenes' images: the bounding box of each image's own rasterio.mask window (clipped to the
    image), projected when the image is in another CRS."""
    import math

    from rasterio.errors import WindowError
    from rasterio.features import geometry_window
    from rasterio.warp import transform_bounds

    rows, cols = [], []
    for scene in scenes:
        with rasterio.open(scene.files["B04"]) as src:
            geom = transform_geom("EPSG:4326", src.crs, mapping(aoi))
            try:
                window = geometry_window(src, [geom])
            except WindowError:
                continue
            bounds = transform_bounds(src.crs, f"EPSG:{epsg}", *src.window_bounds(window))
        for x, y in ((bounds[0], bounds[1]), (bounds[2], bounds[3])):
            col, row = ~transform * (x, y)
            cols.append(col)
            rows.append(row)
    r0, r1 = max(0, math.floor(min(rows) + 1e-6)), min(shape_yx[0], math.ceil(max(rows) - 1e-6))
    c0, c1 = max(0, math.floor(min(cols) + 1e-6)), min(shape_yx[1], math.ceil(max(cols) - 1e-6))
    return slice(r0, r1), slice(c0, c1)


def truth(scenes: list[TestScene], aoi, epsg: int, lattice: Affine, cut_to: list[TestScene] | None = None):
    """The date x AOI mosaic computed independently: rasterio.mask-style grid from the AOI's
    bounds on the lattice, cut to the scenes' images as rasterio.mask(crop=True) cuts a VRT of
    them (:func:`mosaic_cut`), every band warped with rasterio.warp.reproject (nearest), NDVI
    per scene with the docs' offsets, first valid pixel wins by (cloud cover, id).
    ``aoi_pixels`` counts the AOI's pixel centres on the uncut grid; ``cut_to``: the scenes whose
    images cut the grid (default ``scenes``), to compare a subset's mosaic on the same grid."""
    import math

    from rasterio.features import geometry_mask

    geom = transform_geom("EPSG:4326", f"EPSG:{epsg}", mapping(aoi))
    x0, y0, x1, y1 = shape(geom).bounds
    c0, c1 = math.floor((x0 - lattice.c) / lattice.a), math.ceil((x1 - lattice.c) / lattice.a)
    r0, r1 = math.floor((y1 - lattice.f) / lattice.e), math.ceil((y0 - lattice.f) / lattice.e)
    transform = lattice * Affine.translation(c0, r0)
    shape_yx = (r1 - r0, c1 - c0)
    aoi_pixels = int((~geometry_mask([geom], out_shape=shape_yx, transform=transform)).sum())
    rows, cols = mosaic_cut(scenes if cut_to is None else cut_to, aoi, epsg, transform, shape_yx)
    transform = transform * Affine.translation(cols.start, rows.start)
    shape_yx = (rows.stop - rows.start, cols.stop - cols.start)
    inside = ~geometry_mask([geom], out_shape=shape_yx, transform=transform)
    out = {"ndvi": np.full(shape_yx, np.nan, np.float32), "red": np.full(shape_yx, np.nan, np.float32),
           "nir": np.full(shape_yx, np.nan, np.float32), "scl": np.zeros(shape_yx, np.uint8)}
    covered = np.zeros(shape_yx, dtype=bool)
    taken = np.zeros(shape_yx, dtype=bool)
    used = []
    for scene in sorted(scenes, key=lambda s: (s.cloud, s.id)):
        warped = {}
        for code in BANDS:
            with rasterio.open(scene.files[code]) as src:
                dst = np.zeros(shape_yx, dtype=src.dtypes[0])
                reproject(rasterio.band(src, 1), dst, dst_transform=transform, dst_crs=f"EPSG:{epsg}",
                          resampling=Resampling.nearest)
                warped[code] = dst
        data = (warped["B04"] != 0) & (warped["B08"] != 0) & inside
        if not data.any():
            continue
        used.append(scene.id)
        covered |= data
        red = (warped["B04"] * 1e-4 + scene.offset).astype(np.float32)
        nir = (warped["B08"] * 1e-4 + scene.offset).astype(np.float32)
        take = data & ~np.isin(warped["SCL"], SCL_MASKED) & ~taken
        with np.errstate(divide="ignore", invalid="ignore"):
            value = ((nir.astype(np.float64) - red) / (nir.astype(np.float64) + red)).astype(np.float32)
        value[(value < -1) | (value > 1)] = np.nan
        out["ndvi"][take], out["red"][take], out["nir"][take] = value[take], red[take], nir[take]
        out["scl"][take] = warped["SCL"][take]
        taken |= take
    return {**out, "transform": transform, "inside": inside, "covered": covered, "scene_ids": used,
            "aoi_pixels": aoi_pixels}
