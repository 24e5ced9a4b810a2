"""``CogHeader``: everything needed to read a COG's pixels without touching its header again."""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from rasteret_core.cog import geokeys, tiff
from rasteret_core.errors import ArgumentError, InvalidTiffError, TruncatedHeaderError, UnsupportedTiffError

MAX_TILE_BYTES = 512 * 1024 * 1024  # one decoded tile; bounds memory on hostile headers
MAX_DIMENSION = 2**31 - 1
MAX_OVERVIEWS = 30  # GDAL stops adding overviews at 30 (a guard against files listing thousands)

SUBFILE_REDUCED = 1
SUBFILE_MASK = 4

_DTYPES = {
    (1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (1, 64): "uint64",
    (2, 8): "int8", (2, 16): "int16", (2, 32): "int32", (2, 64): "int64",
    # half floats are returned as float32, as GDAL (before 3.11) and rasterio return them
    (3, 16): "float32", (3, 32): "float32", (3, 64): "float64",
}
# NBITS (unsigned samples of 1..31 bits, as GDAL writes with NBITS=n): the next byte-sized type;
# 1-bit (bilevel, e.g. GDAL's internal masks) unpacks to 0/1 bytes
_DTYPES.update({(1, bits): "uint8" if bits < 8 else "uint16" if bits < 16 else "uint32"
                for bits in range(1, 32) if bits not in (8, 16)})

CMYK_MODES = ("rgba", "raw")


@dataclass(frozen=True, eq=False)
class CogHeader:
    """The parsed header of one image (IFD) of a GeoTIFF, with its overviews and mask.

    Immutable; arrays are read-only. ``transform`` uses rasterio's ``Affine`` order
    ``(a, b, c, d, e, f)``. Strip-organised (untiled) TIFFs are described with full-width
    "tiles" one strip high (``is_tiled=False``), so the same reader handles both.
    Overviews and the mask are ``CogHeader`` values too (with empty ``overviews``), so any of
    them can be passed to :func:`read_window`.
    """

    url: str
    width: int
    height: int
    tile_width: int
    tile_height: int
    samples_per_pixel: int
    planar_configuration: int  # 1 = chunky (pixel interleaved), 2 = separate planes
    dtype: np.dtype
    bits_per_sample: int
    sample_format: int
    compression: int
    predictor: int
    photometric: int
    tile_offsets: np.ndarray
    tile_byte_counts: np.ndarray
    jpeg_tables: bytes | None = None
    lerc_parameters: tuple[int, ...] | None = None
    nodata: float | None = None
    crs_epsg: int | None = None
    crs_wkt: str | None = None
    transform: tuple[float, float, float, float, float, float] = geokeys.IDENTITY
    byte_order: str = "<"
    bigtiff: bool = False
    is_tiled: bool = True
    file_size: int | None = None
    overviews: tuple["CogHeader", ...] = ()
    mask: "CogHeader | None" = None
    ifd_offset: int = 0
    color_conversion: str | None = None
    """``"cmyk_to_rgba"`` for 8-bit CMYK read as GDAL does (4 RGBA bands); ``None``: samples as stored."""
    validator: str | None = None
    """The file's version when the header was read (see :mod:`rasteret_core.cog.fetch`'s
    ``validator_*`` helpers); tile reads send it as a condition. ``None``: no condition."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        for name in ("tile_offsets", "tile_byte_counts"):
            arr = getattr(self, name)
            if not (isinstance(arr, np.ndarray) and arr.dtype == np.uint64 and not arr.flags.writeable):
                # read-only arrays are shared as they are (``replace`` would otherwise copy them)
                arr = np.array(arr, dtype=np.uint64)
                arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "transform", tuple(float(v) for v in self.transform))
        object.__setattr__(self, "overviews", tuple(self.overviews))

    # --- tile grid -------------------------------------------------------------------
    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        return -(-self.height // self.tile_height)

    @property
    def planes(self) -> int:
        return self.samples_per_pixel if self.planar_configuration == 2 else 1

    @property
    def count(self) -> int:
        """Number of bands, as rasterio's ``dataset.count`` (4 for CMYK read as RGBA)."""
        return 4 if self.color_conversion == "cmyk_to_rgba" else self.samples_per_pixel

    @property
    def crs(self) -> str | None:
        """The CRS as rasterio/pyproj user input: ``"EPSG:32633"``, else the WKT, else ``None``."""
        if self.crs_epsg is not None:
            return f"EPSG:{self.crs_epsg}"
        return self.crs_wkt or None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        a, b, _, d, e, _ = self.transform
        return (math.hypot(a, d), math.hypot(b, e))

    # --- value semantics -------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CogHeader):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.url, self.width, self.height, self.ifd_offset, self.tile_offsets.tobytes()))

    def __repr__(self) -> str:
        return (
            f"CogHeader({self.url!r}, {self.width}x{self.height}, tiles {self.tile_width}x"
            f"{self.tile_height}, {self.samples_per_pixel}x{self.dtype}, compression={self.compression},"
            f" predictor={self.predictor}, epsg={self.crs_epsg}, overviews={len(self.overviews)})"
        )

    def with_url(self, url: str) -> "CogHeader":
        """The same header for a copy of the file at another URL."""
        return replace(
            self,
            url=url,
            overviews=tuple(o.with_url(url) for o in self.overviews),
            mask=self.mask.with_url(url) if self.mask is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; :meth:`from_dict` restores an equal header."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dtype":
                value = value.name
            elif f.name in ("tile_offsets", "tile_byte_counts"):
                value = [int(v) for v in value]
            elif f.name == "jpeg_tables":
                value = base64.b64encode(value).decode("ascii") if value is not None else None
            elif f.name == "nodata":
                value = _nodata_to_json(value)
            elif f.name in ("transform", "lerc_parameters"):
                value = list(value) if value is not None else None
            elif f.name == "overviews":
                value = [o.to_dict() for o in value]
            elif f.name == "mask":
                value = value.to_dict() if value is not None else None
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CogHeader":
        """Inverse of :meth:`to_dict`; also accepts rows read back from the Arrow struct."""
        kwargs = {f.name: data.get(f.name) for f in fields(cls) if f.name in data}
        tables = kwargs.get("jpeg_tables")
        if isinstance(tables, str):
            kwargs["jpeg_tables"] = base64.b64decode(tables)
        kwargs["nodata"] = _nodata_from_json(kwargs.get("nodata"))
        if kwargs.get("lerc_parameters") is not None:
            kwargs["lerc_parameters"] = tuple(int(v) for v in kwargs["lerc_parameters"])
        kwargs["overviews"] = tuple(
            cls.from_dict({**o, "url": o.get("url") or data["url"]}) for o in (kwargs.get("overviews") or [])
        )
        mask = kwargs.get("mask")
        kwargs["mask"] = cls.from_dict({**mask, "url": mask.get("url") or data["url"]}) if mask else None
        for opt in ("file_size", "crs_epsg"):
            if kwargs.get(opt) is not None:
                kwargs[opt] = int(kwargs[opt])
        return cls(**{k: v for k, v in kwargs.items() if v is not None or k in _NULLABLE})

    # --- Arrow / Parquet -------------------------------------------------------------
    @staticmethod
    def arrow_type():
        """The ``pyarrow.struct`` type used to store headers in Parquet."""
        import pyarrow as pa

        image = [
            ("width", pa.int64()), ("height", pa.int64()),
            ("tile_width", pa.int64()), ("tile_height", pa.int64()),
            ("samples_per_pixel", pa.int32()), ("planar_configuration", pa.int32()),
            ("dtype", pa.string()), ("bits_per_sample", pa.int32()), ("sample_format", pa.int32()),
            ("compression", pa.int32()), ("predictor", pa.int32()), ("photometric", pa.int32()),
            ("tile_offsets", pa.list_(pa.int64())), ("tile_byte_counts", pa.list_(pa.int64())),
            ("jpeg_tables", pa.binary()), ("lerc_parameters", pa.list_(pa.int32())),
            ("transform", pa.list_(pa.float64(), 6)), ("is_tiled", pa.bool_()), ("ifd_offset", pa.int64()),
        ]
        file_level = [
            ("url", pa.string()), ("nodata", pa.float64()), ("crs_epsg", pa.int32()), ("crs_wkt", pa.string()),
            ("byte_order", pa.string()), ("bigtiff", pa.bool_()), ("file_size", pa.int64()),
            ("color_conversion", pa.string()), ("validator", pa.string()),
        ]
        mask = pa.struct(image)
        overview = pa.struct(image + [("mask", mask)])
        return pa.struct(file_level + image + [("overviews", pa.list_(overview)), ("mask", mask)])

    def to_arrow_dict(self) -> dict[str, Any]:
        """A dict matching :meth:`arrow_type` (binary tables, NaN nodata kept as float)."""
        def image(h: CogHeader) -> dict[str, Any]:
            d = h.to_dict()
            return {
                **{k: d[k] for k in _IMAGE_FIELDS},
                "jpeg_tables": h.jpeg_tables,
                "tile_offsets": h.tile_offsets.astype(np.int64),
                "tile_byte_counts": h.tile_byte_counts.astype(np.int64),
            }

        top = image(self)
        top.update(
            url=self.url, nodata=self.nodata, crs_epsg=self.crs_epsg, crs_wkt=self.crs_wkt,
            byte_order=self.byte_order, bigtiff=self.bigtiff, file_size=self.file_size,
            color_conversion=self.color_conversion, validator=self.validator,
            overviews=[
                {**image(o), "mask": image(o.mask) if o.mask is not None else None} for o in self.overviews
            ],
            mask=image(self.mask) if self.mask is not None else None,
        )
        return top

    @classmethod
    def from_arrow_dict(cls, row: dict[str, Any]) -> "CogHeader":
        """Rebuild from a row of the Arrow struct (overviews inherit file-level fields)."""
        shared = {k: row.get(k) for k in _FILE_FIELDS}
        def inherit(image: dict | None, is_mask: bool = False) -> dict | None:
            if not image:
                return None
            out = {**image, **shared, "mask": inherit(image.get("mask"), True)}
            if is_mask:
                out["color_conversion"] = None  # a mask is one band of 0/255, never CMYK
            return out

        overviews = [inherit(o) for o in (row.get("overviews") or [])]
        return cls.from_dict({**row, "overviews": overviews, "mask": inherit(row.get("mask"), True)})


_NULLABLE = {"jpeg_tables", "lerc_parameters", "nodata", "crs_epsg", "crs_wkt", "file_size", "mask", "color_conversion",
             "validator"}
_FILE_FIELDS = ("url", "nodata", "crs_epsg", "crs_wkt", "byte_order", "bigtiff", "file_size", "color_conversion",
                "validator")
_IMAGE_FIELDS = (
    "width", "height", "tile_width", "tile_height", "samples_per_pixel", "planar_configuration",
    "dtype", "bits_per_sample", "sample_format", "compression", "predictor", "photometric",
    "lerc_parameters", "transform", "is_tiled", "ifd_offset",
)


def _nodata_to_json(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _nodata_from_json(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


def parse_nodata(text: str | None, dtype: np.dtype | str | None = None) -> float | None:
    """The GDAL_NODATA tag's text as GDAL (3.10) and rasterio report it for a band of ``dtype``.

    float32 bands round the value to float32 (values within 1e-10 of FLT_MAX snap to it, larger
    ones overflow to infinity); 64-bit integer bands read the leading integer of the text, as
    ``strtoll`` does; a value outside an integer dtype's range (-10000 on uint8) means no nodata.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    dtype = np.dtype(dtype) if dtype is not None else None
    if dtype is not None and dtype.kind in "iu" and dtype.itemsize == 8:
        match = re.match(r"[+-]?\d+", text)
        if match is None:
            return None
        value: float = int(match.group())
        info = np.iinfo(dtype)
        return float(value) if info.min <= value <= info.max else None
    try:
        value = float(text)
    except ValueError:
        return None
    if dtype is None or dtype.kind == "f" and dtype.itemsize == 8:
        return value
    if dtype == np.float32:
        fmax = float(np.finfo(np.float32).max)
        if abs(abs(value) - fmax) < 1e-10 * fmax:
            return math.copysign(fmax, value)
        with np.errstate(over="ignore"):
            return float(np.float32(value))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return value if info.min <= value <= info.max else None
    return value


# --- building headers from parsed IFDs ---------------------------------------------------
def build_header(structure: tiff.TiffStructure, url: str, file_size: int | None, *, cmyk: str = "rgba",
                 validator: str | None = None) -> CogHeader:
    """Turn the parsed IFDs of a file into a :class:`CogHeader` with overviews and mask.

    Overviews keep the file's IFD order (SubIFD overviews included), as GDAL numbers them, so
    ``overview=i`` is rasterio's ``overview_level=i``. ``cmyk="rgba"`` reads 8-bit CMYK as
    GDAL does (RGBA); ``"raw"`` returns the ink samples as stored.
    """
    if cmyk not in CMYK_MODES:
        raise ArgumentError(f"cmyk must be one of {CMYK_MODES}, not {cmyk!r}")
    main_ifd = structure.ifds[0]
    keys = geokeys.read_geokeys(main_ifd)
    transform = geokeys.affine_transform(main_ifd, keys)
    epsg, wkt = geokeys.crs_of(main_ifd, keys)
    common = dict(
        url=url,
        crs_epsg=epsg,
        crs_wkt=wkt,
        byte_order=structure.byte_order,
        bigtiff=structure.bigtiff,
        file_size=file_size,
        validator=validator,
    )
    main = _image(main_ifd, url, file_size, common, transform)
    conversion = "cmyk_to_rgba" if cmyk == "rgba" and _gdal_reads_as_rgba(main, main_ifd) else None
    out_dtype = np.dtype("uint8") if conversion else main.dtype
    common.update(nodata=parse_nodata(main_ifd.text(tiff.TAG_GDAL_NODATA), out_dtype), color_conversion=conversion)
    main = _rgba_dtype(replace(main, nodata=common["nodata"], color_conversion=conversion))
    overviews: list[CogHeader] = []
    mask: CogHeader | None = None
    for ifd in structure.ifds[1:]:
        if not ifd.sub and tiff.TAG_SUB_IFDS in ifd.tags:
            continue  # a later page with SubIFDs of its own: GDAL takes it for neither overview nor mask
        kind = ifd.scalar(tiff.TAG_NEW_SUBFILE_TYPE, 0) or 0
        width = ifd.scalar(tiff.TAG_IMAGE_WIDTH, 0) or 0
        height = ifd.scalar(tiff.TAG_IMAGE_LENGTH, 0) or 0
        if width <= 0 or height <= 0:
            raise InvalidTiffError(url, f"IFD at {ifd.offset} has no size")
        scaled = _scale_transform(transform, main.width / width, main.height / height)
        if kind & SUBFILE_MASK:
            if mask is None and width == main.width and height == main.height:
                mask = replace(_image(ifd, url, file_size, common, transform), color_conversion=None)
            else:
                for i, ov in enumerate(overviews):
                    if ov.width == width and ov.height == height and ov.mask is None:
                        overviews[i] = replace(ov, mask=replace(_image(ifd, url, file_size, common, scaled), color_conversion=None))
        elif kind & SUBFILE_REDUCED and len(overviews) < MAX_OVERVIEWS:
            overview = _rgba_dtype(_image(ifd, url, file_size, common, scaled))
            if overview.count == main.count:  # GDAL drops an overview with another band count
                overviews.append(overview)
    return replace(main, overviews=tuple(overviews), mask=mask)


def _gdal_reads_as_rgba(main: CogHeader, ifd: tiff.Ifd) -> bool:
    """Whether GDAL's GTiff driver reads this image through libtiff's RGBA interface.

    GDAL asks for it on CMYK (``Photometric=Separated``) of at most 8 bits per sample when
    libtiff's ``TIFFRGBAImageOK`` accepts the file: integer samples, at least 4 of them
    (extra samples, alpha or not, included), and an ``InkSet`` that is CMYK (1) or absent. Any
    other ink set (multi-ink 2, or a stray 0) keeps the samples as stored. Ink names are not
    looked at. Fewer than 8 bits are refused: GDAL announces RGBA, then libtiff cannot read it.
    """
    if main.photometric != 5 or main.bits_per_sample > 8 or main.samples_per_pixel < 4 or main.sample_format == 3:
        return False
    if ifd.scalar(tiff.TAG_INK_SET, 1) != 1:
        return False
    if main.bits_per_sample != 8:
        raise UnsupportedTiffError(
            main.url, f"{main.bits_per_sample}-bit CMYK: GDAL reads CMYK as RGBA, which libtiff supports for 8-bit"
                      " samples only (cmyk='raw' returns the inks as stored)")
    return True


def _rgba_dtype(header: CogHeader) -> CogHeader:
    """Signed 8-bit CMYK read as RGBA is uint8, as GDAL reports it; its bytes decode the same."""
    if header.color_conversion == "cmyk_to_rgba" and header.dtype == np.int8:
        return replace(header, dtype=np.dtype("uint8"), sample_format=1)
    return header


def _scale_transform(t: tuple, fx: float, fy: float) -> tuple:
    a, b, c, d, e, f = t
    return (a * fx, b * fy, c, d * fx, e * fy, f)


def _image(ifd: tiff.Ifd, url: str, file_size: int | None, common: dict, transform: tuple) -> CogHeader:
    width = ifd.scalar(tiff.TAG_IMAGE_WIDTH)
    height = ifd.scalar(tiff.TAG_IMAGE_LENGTH)
    if not width or not height or width > MAX_DIMENSION or height > MAX_DIMENSION:
        raise InvalidTiffError(url, f"IFD at {ifd.offset} has invalid size {width}x{height}")
    spp = ifd.scalar(tiff.TAG_SAMPLES_PER_PIXEL, 1) or 0
    if not 1 <= spp <= 65535:
        raise InvalidTiffError(url, f"IFD at {ifd.offset} has {spp} samples per pixel")
    bps_arr = ifd.array(tiff.TAG_BITS_PER_SAMPLE)
    bps = int(bps_arr[0]) if bps_arr is not None and bps_arr.size else 1
    if bps_arr is not None and bps_arr.size > 1 and np.any(bps_arr != bps):
        raise UnsupportedTiffError(url, "samples with different bit depths are not supported")
    fmt_arr = ifd.array(tiff.TAG_SAMPLE_FORMAT)
    sample_format = int(fmt_arr[0]) if fmt_arr is not None and fmt_arr.size else 1
    if sample_format == 4:  # "undefined" data: read as unsigned integers, as GDAL does
        sample_format = 1
    dtype = _DTYPES.get((sample_format, bps))
    if dtype is None:
        kind = {1: "unsigned integer", 2: "signed integer", 3: "floating-point", 5: "complex integer",
                6: "complex floating-point"}.get(sample_format, f"sample format {sample_format}")
        raise UnsupportedTiffError(url, f"{bps}-bit {kind} samples are not supported")
    planar = ifd.scalar(tiff.TAG_PLANAR_CONFIGURATION, 1) or 1
    if planar not in (1, 2):
        raise InvalidTiffError(url, f"invalid planar configuration {planar}")
    if spp == 1:
        planar = 1

    tile_w = ifd.scalar(tiff.TAG_TILE_WIDTH)
    if tile_w is not None:
        tile_h = ifd.scalar(tiff.TAG_TILE_LENGTH)
        offsets = ifd.array(tiff.TAG_TILE_OFFSETS)
        counts = ifd.array(tiff.TAG_TILE_BYTE_COUNTS)
        tiled = True
    else:  # stripped TIFF: strips are full-width tiles
        tile_w = width
        rows = ifd.scalar(tiff.TAG_ROWS_PER_STRIP, height) or height
        tile_h = min(rows, height)
        offsets = ifd.array(tiff.TAG_STRIP_OFFSETS)
        counts = ifd.array(tiff.TAG_STRIP_BYTE_COUNTS)
        tiled = False
    if not tile_w or not tile_h or tile_w > MAX_DIMENSION or tile_h > MAX_DIMENSION:
        raise InvalidTiffError(url, f"IFD at {ifd.offset} has invalid tile size {tile_w}x{tile_h}")
    chunk_samples = 1 if planar == 2 else spp
    if tile_w * tile_h * chunk_samples * np.dtype(dtype).itemsize > MAX_TILE_BYTES:
        raise UnsupportedTiffError(
            url, f"tiles of {tile_w}x{tile_h}x{chunk_samples} {dtype} exceed {MAX_TILE_BYTES} bytes decoded"
        )
    if offsets is None or counts is None:
        raise InvalidTiffError(url, f"IFD at {ifd.offset} has no tile/strip offsets or byte counts")
    expected = (-(-width // tile_w)) * (-(-height // tile_h)) * (spp if planar == 2 else 1)
    if offsets.size != expected or counts.size != expected:
        raise InvalidTiffError(
            url,
            f"IFD at {ifd.offset}: {offsets.size} offsets and {counts.size} byte counts for a grid of {expected} tiles",
        )
    offsets = offsets.astype(np.uint64)
    counts = counts.astype(np.uint64)
    if file_size is not None and offsets.size:
        ends = offsets + counts
        if int(ends.max()) > file_size:
            raise TruncatedHeaderError(
                url, f"tile data ends at byte {int(ends.max())}, past the end of the file ({file_size} bytes)"
            )
    lerc = ifd.array(tiff.TAG_LERC_PARAMETERS)
    return CogHeader(
        width=width,
        height=height,
        tile_width=tile_w,
        tile_height=tile_h,
        samples_per_pixel=spp,
        planar_configuration=planar,
        dtype=np.dtype(dtype),
        bits_per_sample=bps,
        sample_format=sample_format,
        compression=ifd.scalar(tiff.TAG_COMPRESSION, 1) or 1,
        predictor=ifd.scalar(tiff.TAG_PREDICTOR, 1) or 1,
        photometric=ifd.scalar(tiff.TAG_PHOTOMETRIC, 1) if ifd.scalar(tiff.TAG_PHOTOMETRIC) is not None else 1,
        tile_offsets=offsets,
        tile_byte_counts=counts,
        jpeg_tables=ifd.tags.get(tiff.TAG_JPEG_TABLES) if isinstance(ifd.tags.get(tiff.TAG_JPEG_TABLES), bytes) else None,
        lerc_parameters=tuple(int(v) for v in lerc) if lerc is not None else None,
        transform=transform,
        is_tiled=tiled,
        ifd_offset=ifd.offset,
        **common,
    )
