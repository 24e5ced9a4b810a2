"""Tile decoding with imagecodecs: decompression, predictors, byte order.

Decoders are given the exact decoded size as their output buffer where imagecodecs allows
it, so a tile whose bytes decompress to more than the tile (a decompression bomb) fails
instead of allocating.
"""

from __future__ import annotations

from typing import Callable

import imagecodecs
import numpy as np

from rasteret_core.cog.errors import DecodeError, UnsupportedCodecError
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


def codec_name(compression: int) -> str:
    return COMPRESSION_NAMES.get(compression, f"unknown({compression})")


def _available(name: str) -> bool:
    codec = getattr(imagecodecs, name.upper(), None)
    return bool(getattr(codec, "available", False))


def supported_compressions() -> set[int]:
    """Compression codes this installation can decode."""
    needs = {5: "lzw", 7: "jpeg8", 8: "zlib", 32946: "zlib", 32773: "packbits", 34887: "lerc",
             34925: "lzma", 50000: "zstd", 50001: "webp"}
    return {1} | {code for code, name in needs.items() if _available(name)}


def check_supported(header: CogHeader) -> None:
    """Raise :class:`UnsupportedCodecError` early, at header time, for undecodable files."""
    if header.compression not in supported_compressions():
        raise UnsupportedCodecError(
            header.url, f"compression {codec_name(header.compression)} is not supported by this installation"
        )
    if header.predictor not in (1, 2, 3):
        raise UnsupportedCodecError(header.url, f"predictor {header.predictor} is not supported")
    if header.predictor == 3 and header.dtype.kind != "f":
        raise UnsupportedCodecError(header.url, "floating-point predictor on integer samples")
    if header.photometric == 6 and header.compression != 7:
        raise UnsupportedCodecError(header.url, "YCbCr samples are only supported inside JPEG tiles")


def decode_tile(header: CogHeader, data: bytes) -> np.ndarray:
    """Decode one tile (or strip) to an array ``(rows, tile_width, samples_in_chunk)``.

    ``rows`` is ``tile_height`` for tiles; the last strip of a stripped file may be shorter.
    Values are in native byte order and the file's dtype.
    """
    samples = 1 if header.planar_configuration == 2 else header.samples_per_pixel
    width = header.tile_width
    itemsize = header.dtype.itemsize
    full = header.tile_height * width * samples * itemsize
    if header.bits_per_sample == 1:
        full = header.tile_height * ((width * samples + 7) // 8)
    comp = header.compression
    try:
        if comp == 7:
            return _decode_jpeg(header, data, samples)
        if comp == 34887:
            return _decode_lerc(header, data, samples)
        if comp == 50001:
            _check_webp_size(header, data)
            arr = imagecodecs.webp_decode(data)
            return arr.reshape(arr.shape[0], arr.shape[1], -1)[:, :width, :samples]
        raw = _decompress(comp, data, full, header)
    except (UnsupportedCodecError, DecodeError):
        raise
    except Exception as exc:  # imagecodecs raises its own error types per codec
        raise DecodeError(
            header.url, f"{codec_name(comp)} tile failed to decode (corrupt, or larger than a tile once decoded): {exc}"
        ) from None

    if header.bits_per_sample == 1:
        return _unpack_bits(header, raw, samples)
    row_bytes = width * samples * itemsize
    nbytes = len(raw)
    if nbytes > full:
        raise DecodeError(header.url, f"tile decoded to {nbytes} bytes, more than the {full} of a tile")
    rows = nbytes // row_bytes
    if rows == 0 or (header.is_tiled and nbytes != full):
        raise DecodeError(header.url, f"tile decoded to {nbytes} bytes, expected {full}")
    raw = memoryview(raw)[: rows * row_bytes]
    if header.predictor == 3:
        # the float predictor works on the raw byte stream viewed with the native dtype
        arr = np.frombuffer(raw, dtype=header.dtype.newbyteorder("=")).reshape(rows, width, samples)
        return imagecodecs.floatpred_decode(arr, axis=-2)
    file_dtype = header.dtype.newbyteorder(header.byte_order)
    arr = np.frombuffer(raw, dtype=file_dtype).reshape(rows, width, samples)
    if header.predictor == 2:
        arr = imagecodecs.delta_decode(arr, axis=-2)
    if not file_dtype.isnative:
        arr = arr.astype(header.dtype.newbyteorder("="))
    return arr


def _decompress(comp: int, data: bytes, size: int, header: CogHeader) -> bytes | bytearray | np.ndarray:
    if comp == 1:
        return data
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
    out = decoder(data, out=bytearray(size + 1))
    if len(out) > size:
        raise DecodeError(header.url, f"tile decompresses to more than the {size} bytes of a tile")
    return out


def _decode_jpeg(header: CogHeader, data: bytes, samples: int) -> np.ndarray:
    colorspace = None
    outcolorspace = None
    if header.planar_configuration == 2:
        outcolorspace = 1  # separate planes are grey JPEGs
    elif header.photometric == 6:
        outcolorspace = 2  # YCbCr -> RGB, as GDAL returns it
    elif header.photometric == 2:
        outcolorspace = 2
        if not data[6:10] == b"JFIF":
            colorspace = 2
    # a JPEG tile is exactly one tile: decoding into a tile-sized buffer bounds memory
    out = np.empty((header.tile_height, header.tile_width, samples), dtype=np.uint8)
    arr = imagecodecs.jpeg8_decode(
        data, tables=header.jpeg_tables, colorspace=colorspace, outcolorspace=outcolorspace,
        out=out if samples > 1 else out[:, :, 0],
    )
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if arr.shape[1] < header.tile_width or arr.shape[2] != samples:
        raise DecodeError(header.url, f"JPEG tile has shape {arr.shape}, expected (*, {header.tile_width}, {samples})")
    return arr[: header.tile_height, : header.tile_width]


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
    if extra == 1:
        data = imagecodecs.zlib_decode(data, out=bytearray(bound))
    elif extra == 2:
        data = imagecodecs.zstd_decode(data, out=bytearray(bound))
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


def _unpack_bits(header: CogHeader, raw, samples: int) -> np.ndarray:
    """Bilevel rows are padded to whole bytes; unpack to one 0/1 byte per sample."""
    row_bytes = (header.tile_width * samples + 7) // 8
    rows = len(raw) // row_bytes
    if rows == 0 or (header.is_tiled and rows != header.tile_height):
        raise DecodeError(header.url, f"bilevel tile decoded to {len(raw)} bytes")
    packed = np.frombuffer(raw, dtype=np.uint8, count=rows * row_bytes).reshape(rows, row_bytes)
    bits = np.unpackbits(packed, axis=1)[:, : header.tile_width * samples]
    return bits.reshape(rows, header.tile_width, samples)
