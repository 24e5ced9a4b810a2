"""Benchmark data: Sentinel-2-like red (B04) and NIR (B08) COGs with production structure.

The content is the real Sentinel-2 L2A scene of the rio-tiler-pds test fixture
(tile 29RKH, 2020-02-19, 1098 x 1098 at 100 m), upsampled with bilinear resampling to the
10 m grid of the same tile (10980 x 10980) and given texture (field-like parcels that
brighten or darken by a few percent, plus per-pixel sensor noise of ~0.5 %) and a nodata
corner like the edge of a swath, so the COGs compress like real ones (not like random
noise, not like a smooth upsample). They are written the way Earth Search's Sentinel-2
COGs are: uint16, 1024 x 1024 tiles, DEFLATE + horizontal predictor, overviews, nodata 0.

The files are generated once per size and cached under ``bench/.cache/data-<size>/``.
Several "dates" are served by the same two files: the benchmark server maps every key
ending in ``/B04.tif`` (``/B08.tif``) to the one B04 (B08) file, so each date and each
repetition has its own URL (no URL-keyed cache can help a client) without extra disk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = BENCH / ".cache"
# the real Sentinel-2 scene (shared fixtures next to the repository)
FIXTURE = REPO / "../shared/fixtures/rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
BANDS = ("B04", "B08")
TILE = 1024
FULL_SIZE = 10980


def data_dir(size: int) -> Path:
    return CACHE / f"data-{size}"


def _texture(size: int, rows: slice, seed: int) -> np.ndarray:
    """Multiplicative texture for ``rows``: parcels (+-6 %) and per-pixel noise (~0.5 %)."""
    parcel = 40  # px: 400 m fields at 10 m
    cells = -(-size // parcel)
    rng = np.random.default_rng(seed)
    factors = rng.uniform(0.94, 1.06, (cells, cells)).astype(np.float32)
    r = np.arange(rows.start, rows.stop) // parcel
    c = np.arange(size) // parcel
    field = factors[r][:, c]
    noise_rng = np.random.default_rng([seed, rows.start])
    noise = noise_rng.normal(1.0, 0.005, (rows.stop - rows.start, size)).astype(np.float32)
    return field * noise


def make_band(band: str, size: int, seed: int) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(FIXTURE / f"{band}.tif") as src:
        base = src.read(1, out_shape=(size, size), resampling=Resampling.bilinear).astype(np.float32)
    out = np.empty((size, size), np.uint16)
    step = 1024
    for r0 in range(0, size, step):
        rows = slice(r0, min(size, r0 + step))
        block = base[rows] * _texture(size, rows, seed)
        out[rows] = np.clip(np.rint(block), 1, 65535).astype(np.uint16)
    # nodata corner, like the edge of a swath (the same on both bands)
    yy = np.arange(size)[:, None]
    xx = np.arange(size)[None, :]
    out[(xx + yy) < size // 7] = 0
    return out


def write_cog(path: Path, data: np.ndarray, size: int) -> None:
    import rasterio
    from rasterio.transform import from_bounds

    with rasterio.open(FIXTURE / "B04.tif") as src:
        crs, bounds = src.crs, src.bounds
    tmp = path.with_suffix(".tmp")
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        with rasterio.open(
            tmp, "w", driver="COG", width=size, height=size, count=1, dtype="uint16", crs=crs,
            transform=from_bounds(*bounds, size, size), nodata=0, compress="DEFLATE", predictor=2,
            blocksize=TILE, overview_resampling="average", num_threads="ALL_CPUS",
        ) as dst:
            dst.write(data, 1)
    tmp.replace(path)


def ensure_data(size: int = FULL_SIZE, log=print) -> dict:
    """Generate (once) the B04/B08 COGs of ``size`` x ``size``; returns their description."""
    folder = data_dir(size)
    meta_path = folder / "data.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    if not FIXTURE.is_dir():
        raise SystemExit(f"Sentinel-2 fixture not found: {FIXTURE} (expected next to the repository)")
    import rasterio

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, band in enumerate(BANDS):
        started = time.perf_counter()
        path = folder / "bucket" / f"{band}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make_band(band, size, seed=11 + i)
        write_cog(path, data, size)
        with rasterio.open(path) as src:
            info = {
                "path": str(path.relative_to(BENCH)), "bytes": path.stat().st_size, "width": src.width,
                "height": src.height, "block": src.block_shapes[0], "overviews": src.overviews(1),
                "compression": src.compression.value if src.compression else None,
                "raw_bytes": src.width * src.height * 2,
            }
        info["ratio"] = round(info["raw_bytes"] / info["bytes"], 2)
        files[band] = info
        log(f"  generated {band} {size}x{size}: {info['bytes'] / 1e6:.0f} MB "
            f"(compression ratio {info['ratio']}) in {time.perf_counter() - started:.0f} s")
        del data
    meta = {"size": size, "tile": TILE, "files": files}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


if __name__ == "__main__":
    import sys

    print(ensure_data(int(sys.argv[1]) if len(sys.argv) > 1 else FULL_SIZE))
