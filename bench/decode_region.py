"""What undoing the horizontal predictor only on a window's rows saves, per tile and per AOI.

A Sentinel-2-like tile (1024 x 1024 uint16, DEFLATE, predictor 2) is decoded whole and for the
rows and columns a field of 600 m (60 x 60 pixels at 10 m) reads from it, in this process, best
of 7 rounds of 20 decodes. An AOI time series reads one or a few such tiles per date and band,
so the per-tile saving is the decode saving of the series.

    python -m bench.decode_region      # writes bench/results/decode-region.json
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np
import rasterio
from rasterio.transform import from_origin

from rasteret_core.cog import read_header
from rasteret_core.cog.codecs import decode_tile

HERE = Path(__file__).resolve().parent
SIZE, FIELD = 1024, 60


def _tile(folder: Path):
    path = folder / "tile.tif"
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    data = (1000 + 3 * xx + 2 * yy + rng.integers(0, 200, (SIZE, SIZE))).astype("uint16")  # reflectance-like
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint16", tiled=True,
                       blockxsize=SIZE, blockysize=SIZE, compress="DEFLATE", predictor=2, crs="EPSG:32633",
                       transform=from_origin(0, 0, 10, 10)) as dst:
        dst.write(data, 1)
    header = read_header(str(path))
    start, count = int(header.tile_offsets[0]), int(header.tile_byte_counts[0])
    return header, path.read_bytes()[start:start + count]


def _best_ms(call, rounds: int = 7, repeat: int = 20) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, (time.perf_counter() - started) / repeat)
    return round(best * 1e3, 3)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        header, data = _tile(Path(folder))
        mid = SIZE // 2
        region = (mid - FIELD // 2, mid + FIELD // 2, mid + FIELD // 2)  # a field in the middle of the tile
        whole = _best_ms(lambda: decode_tile(header, data, reuse_buffer=True))
        part = _best_ms(lambda: decode_tile(header, data, reuse_buffer=True, region=region))
        inflate = _best_ms(lambda: imagecodecs.deflate_decode(data, out=SIZE * SIZE * 2 + 1))
    result = {"tile": f"{SIZE}x{SIZE} uint16 DEFLATE predictor 2", "field_pixels": f"{FIELD}x{FIELD}",
              "whole_tile_ms": whole, "field_rows_ms": part, "inflate_only_ms": inflate,
              "saved_percent": round(100 * (1 - part / whole), 1)}
    (HERE / "results" / "decode-region.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
