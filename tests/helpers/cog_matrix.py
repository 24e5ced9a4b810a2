"""A deterministic matrix of GeoTIFFs written by GDAL (through rasterio) for pixel-exact tests.

Each case varies dtype, codec, predictor, tile size, BigTIFF, band count/interleave and a
ragged image size (edge tiles partly outside the image); fidelity cases add GDAL creation
options (NBITS, PHOTOMETRIC=CMYK, short last strips), a user-defined CRS, overviews built in a
chosen order and an opaque alpha band. Cases are plain values, known at collection time;
``write_case`` creates the file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64", "int64", "uint64"]
CODECS = ["NONE", "DEFLATE", "LZW", "ZSTD", "PACKBITS", "LZMA", "LERC"]
SIZES = [(300, 217), (256, 256), (97, 131), (513, 260)]
BLOCKS = [64, 256, 16, 128]


@dataclass(frozen=True)
class MatrixCase:
    dtype: str
    compress: str
    predictor: int = 1
    blocksize: int = 64
    bigtiff: bool = False
    bands: int = 1
    interleave: str = "PIXEL"
    width: int = 300
    height: int = 217
    nodata: float | None = None
    driver: str = "COG"
    extra: dict = field(default_factory=dict, hash=False, compare=False)
    crs: str = "EPSG:32633"
    overview_levels: tuple[tuple[int, ...], ...] = ()
    """GTiff only: overview factors built in successive calls (IFD order = call order)."""
    content: str = "gradient"
    """``"gradient"``, or ``"opaque_alpha"`` (last band 255 everywhere)."""
    label: str = ""
    """Names what the case checks, in its id."""

    @property
    def id(self) -> str:
        parts = [self.dtype, self.compress.lower(), f"p{self.predictor}", f"t{self.blocksize}",
                 f"{self.bands}b-{self.interleave.lower()}", f"{self.width}x{self.height}"]
        if self.bigtiff:
            parts.append("bigtiff")
        if self.driver != "COG":
            parts.append(self.driver.lower() + "-" + "-".join(f"{k}={v}".lower() for k, v in self.extra.items()))
        if self.label:
            parts.append(self.label)
        return "_".join(parts)


def _predictors(dtype: str, codec: str) -> list[int]:
    if codec in ("NONE", "PACKBITS", "LERC"):
        return [1]
    return [1, 3] if dtype.startswith("float") else [1, 2]


def matrix_cases() -> list[MatrixCase]:
    """About a hundred cases covering every axis without a full cartesian product."""
    cases: list[MatrixCase] = []
    rotation = itertools.count()
    for dtype, codec in itertools.product(DTYPES, CODECS):
        if codec == "LERC" and dtype in ("int64", "uint64"):
            continue  # LERC has no 64-bit integers
        for predictor in _predictors(dtype, codec):
            i = next(rotation)
            width, height = SIZES[i % len(SIZES)]
            bands = 3 if i % 5 == 0 else 1
            cases.append(MatrixCase(
                dtype=dtype, compress=codec, predictor=predictor, blocksize=BLOCKS[i % len(BLOCKS)],
                bigtiff=i % 3 == 0, bands=bands, width=width, height=height,
                nodata=(0 if i % 4 == 0 else None),
            ))
    cases += [
        MatrixCase("uint8", "JPEG", bands=3, blocksize=64),
        MatrixCase("uint8", "JPEG", bands=1, blocksize=128, width=256, height=256),
        MatrixCase("uint8", "WEBP", bands=3, blocksize=64, extra={}),
        MatrixCase("float32", "LERC_DEFLATE", blocksize=64),
        MatrixCase("float32", "LERC_ZSTD", blocksize=128, bigtiff=True),
        # GTiff driver: layouts the COG driver does not write
        MatrixCase("uint16", "DEFLATE", predictor=2, bands=3, interleave="BAND", driver="GTiff",
                   extra={"TILED": "YES"}),
        MatrixCase("int16", "LZW", predictor=2, blocksize=64, driver="GTiff", extra={"TILED": "YES", "ENDIANNESS": "BIG"}),
        MatrixCase("float32", "DEFLATE", predictor=3, blocksize=64, bands=2, driver="GTiff",
                   extra={"TILED": "YES", "ENDIANNESS": "BIG"}),
        MatrixCase("uint16", "DEFLATE", predictor=2, driver="GTiff", extra={"TILED": "NO", "BLOCKYSIZE": "16"}),
        MatrixCase("float64", "NONE", driver="GTiff", extra={"TILED": "NO"}),
    ]
    cases += fidelity_cases()
    return cases


# A projection with no EPSG code, and a proj string GDAL identifies as EPSG:32633
LCC_NAD83 = "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +x_0=0 +y_0=0 +datum=NAD83 +units=m +no_defs"
UTM33_PROJ4 = "+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs"


def fidelity_cases() -> list[MatrixCase]:
    """Files GDAL reads with a conversion or a layout the plain cases do not have."""
    return [
        # libwebp returns 3 channels for an RGBA tile whose alpha is all opaque
        MatrixCase("uint8", "WEBP", bands=4, blocksize=64, content="opaque_alpha", label="webp-rgba-opaque"),
        MatrixCase("uint8", "WEBP", bands=4, driver="GTiff", extra={"TILED": "YES", "WEBP_LOSSLESS": "YES"},
                   label="webp-rgba"),
        # stripped JPEG: 217 rows in strips of 16, the last one 9 rows high
        MatrixCase("uint8", "JPEG", bands=3, driver="GTiff", extra={"TILED": "NO", "BLOCKYSIZE": "16"}, label="jpeg-short-strip"),
        MatrixCase("uint8", "JPEG", bands=1, driver="GTiff", extra={"TILED": "NO", "BLOCKYSIZE": "24"}, label="jpeg-grey-short-strip"),
        # 4-band JPEG, as GDAL writes RGBA (4 components, no colour transform)
        MatrixCase("uint8", "JPEG", bands=4, blocksize=64, label="jpeg-rgba"),
        MatrixCase("uint8", "JPEG", bands=4, driver="GTiff", extra={"TILED": "NO", "BLOCKYSIZE": "32"}, label="jpeg-rgba-strips"),
        # 8-bit CMYK: GDAL returns RGBA
        MatrixCase("uint8", "DEFLATE", bands=4, driver="GTiff", extra={"TILED": "YES", "PHOTOMETRIC": "CMYK"}, label="cmyk"),
        MatrixCase("uint8", "NONE", bands=4, interleave="BAND", driver="GTiff", extra={"TILED": "NO", "PHOTOMETRIC": "CMYK"},
                   label="cmyk-planar"),
        MatrixCase("uint8", "JPEG", bands=4, driver="GTiff", extra={"TILED": "YES", "PHOTOMETRIC": "CMYK"}, label="cmyk-jpeg"),
        # CMYK with a fifth sample (alpha, or unspecified): still 4 RGBA bands; signed inks read as their bytes
        MatrixCase("uint8", "DEFLATE", bands=5, driver="GTiff", extra={"TILED": "YES", "PHOTOMETRIC": "CMYK", "ALPHA": "YES"},
                   label="cmyk-alpha"),
        MatrixCase("uint8", "LZW", predictor=2, bands=5, driver="GTiff", extra={"TILED": "NO", "BLOCKYSIZE": "16",
                   "PHOTOMETRIC": "CMYK"}, label="cmyk-extra-sample-strips"),
        MatrixCase("int8", "DEFLATE", bands=4, driver="GTiff", extra={"TILED": "YES", "PHOTOMETRIC": "CMYK"}, label="cmyk-int8"),
        # half floats (returned as float32) and NBITS
        MatrixCase("float32", "DEFLATE", driver="GTiff", extra={"TILED": "YES", "NBITS": "16"}, label="float16"),
        MatrixCase("float32", "NONE", bands=2, driver="GTiff", extra={"TILED": "NO", "NBITS": "16"}, label="float16-strips"),
        MatrixCase("uint16", "DEFLATE", bands=2, driver="GTiff", extra={"TILED": "YES", "NBITS": "12"}, label="nbits12"),
        MatrixCase("uint16", "LZW", width=97, height=131, driver="GTiff", extra={"TILED": "NO", "NBITS": "10"}, label="nbits10"),
        MatrixCase("uint8", "NONE", bands=3, interleave="BAND", driver="GTiff", extra={"TILED": "YES", "NBITS": "4"}, label="nbits4"),
        MatrixCase("uint8", "ZSTD", width=97, height=131, driver="GTiff", extra={"TILED": "NO", "NBITS": "2"}, label="nbits2"),
        MatrixCase("uint32", "DEFLATE", driver="GTiff", extra={"TILED": "YES", "NBITS": "20"}, label="nbits20"),
        # CRSs without an EPSG code in the file
        MatrixCase("uint16", "DEFLATE", crs=LCC_NAD83, label="crs-lcc-no-epsg"),
        MatrixCase("uint16", "DEFLATE", crs=UTM33_PROJ4, label="crs-utm-proj4"),
        # overviews stored in the order 4, 2, 8 (GDAL numbers them in that order), nodata rounding
        MatrixCase("uint16", "DEFLATE", width=513, height=260, driver="GTiff", extra={"TILED": "YES"},
                   overview_levels=((4,), (2, 8)), label="overviews-4-2-8"),
        MatrixCase("float32", "DEFLATE", nodata=-3.4e38, label="float32-nodata-rounded"),
        MatrixCase("uint8", "DEFLATE", driver="GTiff", extra={"TILED": "YES"}, nodata=-10000, label="nodata-outside-dtype"),
    ]


def _content(case: MatrixCase, seed: int) -> np.ndarray:
    """Smooth gradients plus a little noise: realistic enough to compress."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : case.height, 0 : case.width].astype(np.float64)
    base = np.stack([np.sin(x / (17 + 5 * b)) + np.cos(y / (23 + 3 * b)) for b in range(case.bands)])
    base += rng.normal(0, 0.05, base.shape)
    dtype = np.dtype(case.dtype)
    if dtype.kind == "f":
        return (base * 1000.5).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
    if "NBITS" in case.extra:
        hi = 2 ** int(case.extra["NBITS"]) - 1
    scaled = (base + 2.2) / 4.4 * (hi - lo) + lo
    out = np.clip(scaled, lo, hi).astype(dtype)
    if case.content == "opaque_alpha":
        out[-1] = info.max
    return out


def _outside_dtype(value: float | None, dtype: str) -> bool:
    if value is None or np.dtype(dtype).kind == "f":
        return False
    info = np.iinfo(dtype)
    return not info.min <= value <= info.max


def write_case(case: MatrixCase, folder: Path, seed: int = 0) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path = folder / f"{case.id}.tif"
    if path.exists():
        return path
    profile = dict(
        driver=case.driver, width=case.width, height=case.height, count=case.bands, dtype=case.dtype,
        crs=case.crs, transform=from_origin(500000, 4000000, 10, 10), compress=case.compress,
        nodata=case.nodata,
    )
    if case.driver == "COG":
        profile.update(blocksize=case.blocksize, bigtiff="YES" if case.bigtiff else "NO", overview_resampling="nearest")
        if case.predictor != 1:
            profile["predictor"] = case.predictor
        if case.compress in ("JPEG", "WEBP"):
            profile["quality"] = 90
    else:
        profile.update(interleave=case.interleave, predictor=case.predictor, **case.extra)
        if case.extra.get("TILED") == "YES":
            profile.update(blockxsize=case.blocksize, blockysize=case.blocksize)
    late_nodata = _outside_dtype(case.nodata, case.dtype)
    if late_nodata:  # rasterio refuses it at creation; GDAL writes it when set afterwards
        profile["nodata"] = None
    tmp = path.with_suffix(".tmp")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(_content(case, seed))
    if late_nodata:
        with rasterio.open(tmp, "r+") as dst:
            dst.nodata = case.nodata
    for levels in case.overview_levels:
        from rasterio.enums import Resampling

        with rasterio.open(tmp, "r+") as dst:
            dst.build_overviews(list(levels), Resampling.nearest)
    tmp.rename(path)
    return path
