"""Tile decoding with imagecodecs: decompression, predictors, byte order.

Decoders are given the exact decoded size as their output buffer where imagecodecs allows
it, so a tile whose bytes decompress to more than the tile (a decompression bomb) fails
instead of allocating.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable

import imagecodecs
import numpy as np

from rasteret_core.errors import DecodeError, UnsupportedCodecError, UnsupportedTiffError
from rasteret_core.cog.header import CogHeader

COMPRESSION_NAMES = {
    1: "none",
    5: "lzw",
    7: "jpeg",
    8: "deflate",
    32946: "deflate",
    32773: "packbits",
    34887: "lerc",
    34925: "lzma",
    50000: "zstd",
    50001: "webp",
}

# Names of the codes libtiff and GDAL know but rasteret does not decode, so a refusal says
# "CCITT G4 fax" rather than a bare number (codes from libtiff's tiff.h).
OTHER_COMPRESSIONS = {
    2: "CCITT RLE (modified Huffman)",
    3: "CCITT G3 fax",
    4: "CCITT G4 fax",
    6: "OJPEG (old-style JPEG)",
    9: "JBIG (ITU-T T.85)",
    10: "JBIG (ITU-T T.43)",
    32766: "NeXT 2-bit RLE",
    32771: "CCITT RLE with word alignment",
    32809: "ThunderScan",
    32895: "IT8 CT with padding",
    32896: "IT8 linework RLE",
    32897: "IT8 monochrome picture",
    32898: "IT8 binary line art",
    32908: "Pixar companded 10-bit log (PixarFilm)",
    32909: "Pixar companded 11-bit log (PixarLog)",
    32947: "Kodak DCS",
    34661: "JBIG (ISO)",
    34676: "SGI LogLuv / LogL (SGILOG)",
    34677: "SGI LogLuv 24-bit (SGILOG24)",
    34712: "JPEG 2000",
    34892: "lossy JPEG (DNG)",
    34926: "zstd (draft code 34926)",
    34927: "webp (draft code 34927)",
    34933: "PNG",
    34934: "JPEG XR",
    50002: "JPEG XL",
    52546: "JPEG XL (DNG 1.7)",
}


def codec_name(compression: int) -> str:
    """A human name for a TIFF Compression code, e.g. ``"CCITT G4 fax (code 4)"``."""
    if compression in COMPRESSION_NAMES:
        return COMPRESSION_NAMES[compression]
    if compression in OTHER_COMPRESSIONS:
        return f"{OTHER_COMPRESSIONS[compression]} (code {compression})"
    return f"unknown compression code {compression}"


PHOTOMETRIC_NAMES = {
    0: "MinIsWhite", 1: "MinIsBlack", 2: "RGB", 3: "Palette", 4: "TransparencyMask", 5: "Separated (CMYK)",
    6: "YCbCr", 8: "CIELab", 9: "ICCLab", 10: "ITULab", 32844: "SGI LogL", 32845: "SGI LogLuv",
    32803: "CFA", 34892: "LinearRaw",
}


def photometric_name(photometric: int) -> str:
    return PHOTOMETRIC_NAMES.get(photometric, f"photometric code {photometric}")


def _available(name: str) -> bool:
    codec = getattr(imagecodecs, name.upper(), None)
    return bool(getattr(codec, "available", False))


@functools.lru_cache(maxsize=1)
def supported_compressions() -> frozenset[int]:
    """Compression codes this installation can decode (probed once: every header asks)."""
    needs = {5: "lzw", 7: "jpeg8", 8: "zlib", 32946: "zlib", 32773: "packbits", 34887: "lerc",
             34925: "lzma", 50000: "zstd", 50001: "webp"}
    return frozenset({1} | {code for code, name in needs.items() if _available(name)})


def check_supported(header: CogHeader) -> None:
    """Raise :class:`UnsupportedCodecError` early, at header time, for undecodable files."""
    if header.compression not in supported_compressions():
        where = "by this installation's imagecodecs" if header.compression in COMPRESSION_NAMES else "by rasteret"
        raise UnsupportedCodecError(header.url, f"compression {codec_name(header.compression)} is not supported {where}")
    if header.predictor not in (1, 2, 3):
        raise UnsupportedCodecError(header.url, f"predictor {header.predictor} is not supported")
    if header.predictor == 3 and header.dtype.kind != "f":
        raise UnsupportedCodecError(header.url, "floating-point predictor on integer samples")
    if header.photometric == 6 and header.compression != 7:
        raise UnsupportedCodecError(
            header.url, f"YCbCr samples are only supported inside JPEG tiles (compression {codec_name(header.compression)})"
        )
    if header.photometric in (32844, 32845):
        raise UnsupportedTiffError(header.url, f"photometric {photometric_name(header.photometric)} is not supported")
    bits = header.bits_per_sample
    if bits not in (8, 16, 32, 64) and header.predictor != 1:
        raise UnsupportedTiffError(header.url, f"predictor {header.predictor} on {bits}-bit samples (libtiff refuses it too)")
    if header.compression in (7, 50001) and bits != 8:
        raise UnsupportedTiffError(header.url, f"{bits}-bit {codec_name(header.compression)} tiles are not supported")
    if header.compression == 50001 and (header.planar_configuration == 2 or header.samples_per_pixel not in (3, 4)):
        # libtiff's WebP codec refuses these too ("Must be 3 (RGB) or 4 (RGBA) bands"), so GDAL cannot read them
        layout = "separate planes" if header.planar_configuration == 2 else f"{header.samples_per_pixel} samples per pixel"
        raise UnsupportedCodecError(header.url, f"webp holds 3 (RGB) or 4 (RGBA) interleaved channels, not {layout}")


def storage_dtype(header: CogHeader) -> np.dtype:
    """The dtype samples are stored in, before the conversions GDAL applies on read.

    Differs from ``header.dtype`` for half floats (stored float16, returned float32 as GDAL does).
    """
    if header.sample_format == 3 and header.bits_per_sample == 16:
        return np.dtype("float16")
    return header.dtype


def chunk_bytes(header: CogHeader, rows: int) -> int:
    """Decoded bytes of ``rows`` rows of one tile/strip (rows of packed bits are padded to bytes)."""
    samples = 1 if header.planar_configuration == 2 else header.samples_per_pixel
    bits = header.bits_per_sample
    if bits in (8, 16, 32, 64):
        return rows * header.tile_width * samples * (bits // 8)
    return rows * ((header.tile_width * samples * bits + 7) // 8)


_SCRATCH = threading.local()
_SCRATCH_MAX = 64 * 1024 * 1024  # larger chunks (huge strips) get a buffer of their own


def _scratch(size: int) -> bytearray:
    """This thread's reusable decode buffer, at least ``size`` bytes (allocated once per thread
    and tile size instead of a fresh zeroed buffer per tile)."""
    if size > _SCRATCH_MAX:
        return bytearray(size)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or len(buf) < size:
        buf = _SCRATCH.buf = bytearray(size)
    return buf


def decode_tile(header: CogHeader, data: bytes, *, out: np.ndarray | None = None,
                reuse_buffer: bool = False, region: tuple[int, int, int] | None = None) -> np.ndarray:
    """Decode one tile (or strip) to an array ``(rows, columns, samples_in_chunk)``.

    ``rows`` is ``tile_height`` for tiles; the last strip of a stripped file may be shorter, and
    so may JPEG tiles and strips that stop at the image's edge. ``columns`` is ``tile_width``
    except for such JPEG chunks. Values are in native byte order and the dtype GDAL returns
    (``header.dtype``): half floats become float32, NBITS samples (2, 4, 12 bits, ...) are
    unpacked to the next whole-byte type. The caller checks the rows and columns it needs.

    Args:
        out: where to write the decoded values (exactly the decoded shape, ``header.dtype``;
            may be a strided view such as a whole tile's place in a window): the predictor
            writes straight into it, with no intermediate array. Returned.
        reuse_buffer: decompress into this thread's reusable buffer and undo the predictor in
            place; the result is then only valid until this thread decodes its next tile.
        region: ``(first row, stop row, stop column)`` the caller will read. The horizontal
            predictor (2) is then undone only there: its rows are independent and a column needs
            only the columns before it, so an AOI covering a few rows of a tile pays for those
            rows. Values outside the region are left as stored (not valid). Ignored with ``out``.

    Raises:
        DecodeError: corrupt data, more bytes than a tile once decoded, or not ``out``'s shape.
        UnsupportedCodecError: a compression this installation cannot decode.
    """
    arr = _decode(header, data, out, reuse_buffer or out is not None, None if out is not None else region)
    if out is None or arr is out:
        return arr
    if arr.shape != out.shape:
        raise DecodeError(header.url, f"tile decoded to shape {arr.shape}, expected {out.shape}")
    np.copyto(out, arr, casting="same_kind")
    return out


def _decode(header: CogHeader, data: bytes, out: np.ndarray | None, scratch: bool,
            region: tuple[int, int, int] | None = None) -> np.ndarray:
    samples = 1 if header.planar_configuration == 2 else header.samples_per_pixel
    width = header.tile_width
    full = chunk_bytes(header, header.tile_height)
    comp = header.compression
    try:
        if comp == 7:
            return _decode_jpeg(header, data, samples)
        if comp == 34887:
            return _decode_lerc(header, data, samples)
        if comp == 50001:
            return _decode_webp(header, data, samples)
        raw = _decompress(comp, data, full, header, scratch)
    except (UnsupportedTiffError, DecodeError):  # already named (UnsupportedCodecError included)
        raise
    except Exception as exc:  # imagecodecs raises its own error types per codec
        raise DecodeError(
            header.url, f"{codec_name(comp)} tile failed to decode (corrupt, or larger than a tile once decoded): {exc}"
        ) from None

    nbytes = len(raw)
    if nbytes > full:
        raise DecodeError(header.url, f"tile decoded to {nbytes} bytes, more than the {full} of a tile")
    row_bytes = chunk_bytes(header, 1)
    rows = nbytes // row_bytes
    if rows == 0 or (header.is_tiled and nbytes != full):
        raise DecodeError(header.url, f"tile decoded to {nbytes} bytes, expected {full}")
    if header.bits_per_sample not in (8, 16, 32, 64):
        return _unpack_bits(header, raw, rows, samples)
    raw = memoryview(raw)[: rows * row_bytes]
    stored = storage_dtype(header)
    if header.predictor == 3:
        # the float predictor works on the raw byte stream viewed with the native dtype
        arr = np.frombuffer(raw, dtype=stored.newbyteorder("=")).reshape(rows, width, samples)
        arr = imagecodecs.floatpred_decode(arr, axis=-2)  # its out= needs a contiguous array
    else:
        file_dtype = stored.newbyteorder(header.byte_order)
        arr = np.frombuffer(raw, dtype=file_dtype).reshape(rows, width, samples)
        if header.predictor == 2:
            if (file_dtype.isnative and stored == header.dtype and out is not None
                    and out.shape == arr.shape and out.dtype == arr.dtype):
                return imagecodecs.delta_decode(arr, axis=-2, out=out)  # straight into the caller's array
            if region is not None and arr.flags.writeable and file_dtype.isnative:
                r0, r1, c1 = region  # only what the caller reads, in place (see decode_tile)
                part = arr[max(0, r0):min(rows, r1), :min(width, c1)]
                imagecodecs.delta_decode(part, axis=-2, out=part)
                return arr if arr.dtype == header.dtype else arr.astype(header.dtype)
            # in place when the bytes are ours (a decode buffer), else into a new array
            arr = imagecodecs.delta_decode(arr, axis=-2, out=arr if arr.flags.writeable else None)
        if not file_dtype.isnative:
            arr = arr.astype(stored.newbyteorder("="))
    if arr.dtype != header.dtype:
        arr = arr.astype(header.dtype)  # float16 -> float32, exact
    return arr


def _decompress(comp: int, data: bytes, size: int, header: CogHeader,
                scratch: bool = False) -> bytes | bytearray | memoryview | np.ndarray:
    if comp == 1:
        # read-only: the predictor must never run in place on the fetched bytes (the same
        # range may be the data of several tiles)
        return memoryview(data).toreadonly()
    decoder: Callable | None = {
        5: imagecodecs.lzw_decode,
        # libdeflate: about twice as fast as zlib on Sentinel-2 tiles; needs the output size,
        # which a tile always has
        8: imagecodecs.deflate_decode,
        32946: imagecodecs.deflate_decode,
        32773: imagecodecs.packbits_decode,
        34925: imagecodecs.lzma_decode,
        50000: imagecodecs.zstd_decode,
    }.get(comp)
    if decoder is None:
        raise UnsupportedCodecError(header.url, f"compression {codec_name(comp)} is not supported")
    # bounded output: more bytes than a tile is an error, not an allocation
    out = decoder(data, out=memoryview(_scratch(size + 1))[: size + 1] if scratch else bytearray(size + 1))
    if len(out) > size:
        raise DecodeError(header.url, f"tile decompresses to more than the {size} bytes of a tile")
    return out


def _decode_jpeg(header: CogHeader, data: bytes, samples: int) -> np.ndarray:
    """A JPEG tile or strip, with libtiff's colour handling: YCbCr -> RGB, all else as coded.

    A JPEG chunk may be smaller than the tile (libtiff writes the last strip, and some writers
    edge tiles, only as high/wide as the image), never larger: its frame size is read first so
    the output buffer is bounded before decoding.
    """
    colorspace = None
    outcolorspace = None
    if header.planar_configuration == 2:
        outcolorspace = 1  # separate planes are grey JPEGs
    elif header.photometric == 6:
        outcolorspace = 2  # YCbCr -> RGB, as GDAL returns it
    elif samples == 3 and header.photometric == 2:
        outcolorspace = 2
        if not data[6:10] == b"JFIF":
            colorspace = 2
    elif samples != 1:
        # RGBA, CMYK, 2-band...: components as coded, as libtiff asks libjpeg (JCS_UNKNOWN);
        # libjpeg would otherwise guess a colour space from the count ("Bogus JPEG colorspace")
        colorspace = outcolorspace = 0
    height, width, components = _jpeg_frame(header, data)
    if height > header.tile_height or width > header.tile_width or components != samples:
        raise DecodeError(
            header.url,
            f"JPEG tile is {width}x{height} with {components} components, expected at most "
            f"{header.tile_width}x{header.tile_height} with {samples}",
        )
    out = np.empty((height, width, samples), dtype=np.uint8)
    arr = imagecodecs.jpeg8_decode(
        data, tables=header.jpeg_tables, colorspace=colorspace, outcolorspace=outcolorspace,
        out=out if samples > 1 else out[:, :, 0],
    )
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_frame(header: CogHeader, data: bytes) -> tuple[int, int, int]:
    """``(height, width, components)`` from the JPEG's start-of-frame segment."""
    pos = 2 if data[:2] == b"\xff\xd8" else -1
    while 0 <= pos < len(data) - 9:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return height or header.tile_height, width, data[pos + 9]
        pos += 2 + length
    raise DecodeError(header.url, "JPEG tile has no frame header (SOF)")


def _decode_webp(header: CogHeader, data: bytes, samples: int) -> np.ndarray:
    """WebP holds RGB or RGBA; libwebp drops an all-opaque alpha, GDAL returns it as 255."""
    if samples not in (3, 4):
        raise UnsupportedTiffError(header.url, f"WebP tiles with {samples} samples per pixel")
    _check_webp_size(header, data)
    arr = imagecodecs.webp_decode(data, hasalpha=samples == 4)
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if arr.shape[2] == 3 and samples == 4:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
    if arr.shape[0] < header.tile_height or arr.shape[1] < header.tile_width or arr.shape[2] < samples:
        raise DecodeError(header.url, f"WebP tile has shape {arr.shape}, expected ({header.tile_height}, {header.tile_width}, {samples})")
    return arr[: header.tile_height, : header.tile_width, :samples]


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` a WebP stream declares (VP8, VP8L or VP8X), or ``None``."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _check_webp_size(header: CogHeader, data: bytes) -> None:
    """A WebP tile may not declare more pixels than a tile: the decoder sizes its output from
    the stream's own header, so a lying one is refused before it allocates."""
    size = _webp_size(bytes(data[:30]))
    if size is None:
        raise DecodeError(header.url, "webp tile has no WebP header")
    if size[0] * size[1] > header.tile_width * header.tile_height:
        raise DecodeError(header.url, f"webp tile declares {size[0]} x {size[1]} pixels, larger than a "
                                      f"{header.tile_width} x {header.tile_height} tile")


def _decode_lerc(header: CogHeader, data: bytes, samples: int) -> np.ndarray:
    params = header.lerc_parameters or ()
    extra = params[1] if len(params) > 1 else 0
    # the inner DEFLATE/ZSTD blob is a LERC blob of one tile: raw values plus a validity mask
    # and headers at worst, so twice the tile's size bounds it with room to spare
    tile = header.tile_height * header.tile_width * samples * header.dtype.itemsize
    bound = 2 * tile + 65536
    # an uninitialised buffer: only the pages the decoder writes become memory
    if extra == 1:
        data = imagecodecs.zlib_decode(data, out=np.empty(bound, np.uint8))
    elif extra == 2:
        data = imagecodecs.zstd_decode(data, out=np.empty(bound, np.uint8))
    rows = header.tile_height
    # decoding into a tile-shaped array: a blob declaring a larger image fails before allocating
    shape = (rows, header.tile_width) if samples == 1 else (rows, header.tile_width, samples)
    try:
        arr = np.asarray(imagecodecs.lerc_decode(data, out=np.empty(shape, header.dtype)))
    except ValueError as exc:
        raise DecodeError(header.url, f"LERC tile is not one {shape} {header.dtype.name} tile ({exc})") from None
    arr = arr.reshape(rows, header.tile_width, samples) if arr.size == rows * header.tile_width * samples else arr
    if arr.shape != (rows, header.tile_width, samples):
        raise DecodeError(header.url, f"LERC tile has shape {arr.shape}")
    return arr.astype(header.dtype, copy=False)


def _unpack_bits(header: CogHeader, raw, rows: int, samples: int) -> np.ndarray:
    """NBITS samples (1..31 bits, each row padded to whole bytes, MSB first as libtiff packs
    them) unpacked to ``header.dtype`` values: 0/1 bytes for bilevel, uint16 for 12 bits."""
    values = header.tile_width * samples
    row_bytes = chunk_bytes(header, 1)
    packed = np.frombuffer(raw, dtype=np.uint8, count=rows * row_bytes)
    out = imagecodecs.packints_decode(packed, header.dtype, header.bits_per_sample, runlen=values)
    return np.asarray(out).reshape(rows, header.tile_width, samples)


def cmyk_to_rgba(cmyk: np.ndarray) -> np.ndarray:
    """8-bit CMYK (+ any extra samples) ``(bands, rows, cols)`` -> RGBA as GDAL returns it.

    libtiff's RGBA interface, which GDAL uses for such files: ``R = (255 - K) * (255 - C) // 255``
    and so on, alpha 255 (extra samples are dropped). Signed 8-bit inks are taken as the bytes
    they are stored as, as libtiff does.
    """
    if cmyk.dtype == np.int8:
        cmyk = cmyk.view(np.uint8)
    c, m, y, k = (cmyk[i].astype(np.uint16) for i in range(4))
    white = 255 - k
    out = np.empty((4,) + cmyk.shape[1:], dtype=np.uint8)
    for band, ink in enumerate((c, m, y)):
        out[band] = white * (255 - ink) // 255
    out[3] = 255
    return out
