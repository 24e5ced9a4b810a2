"""Pure TIFF / BigTIFF structure parser working on a sparse byte buffer.

The parser never does I/O. When it needs bytes that are not in the buffer it raises
:class:`NeedBytes` with the missing ranges; the caller fetches them and parses again.
Re-parsing is cheap (microseconds) compared with a network round trip, and keeps the parser
a plain function that property tests can feed arbitrary bytes.

Every count read from the file is checked against fixed limits *before* anything is
allocated, so a lying tag count costs nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from rasteret_core.errors import InvalidTiffError, NotATiffError, TruncatedHeaderError

# Limits that bound memory and time on hostile input.
MAX_IFDS = 256
MAX_IFD_ENTRIES = 1024
MAX_TAG_BYTES = 64 * 1024 * 1024
MAX_GHOST_BYTES = 64 * 1024

# Tags whose values are read. Others are skipped without fetching their values.
TAG_NEW_SUBFILE_TYPE = 254
TAG_IMAGE_WIDTH = 256
TAG_IMAGE_LENGTH = 257
TAG_BITS_PER_SAMPLE = 258
TAG_COMPRESSION = 259
TAG_PHOTOMETRIC = 262
TAG_STRIP_OFFSETS = 273
TAG_SAMPLES_PER_PIXEL = 277
TAG_ROWS_PER_STRIP = 278
TAG_STRIP_BYTE_COUNTS = 279
TAG_PLANAR_CONFIGURATION = 284
TAG_PREDICTOR = 317
TAG_TILE_WIDTH = 322
TAG_TILE_LENGTH = 323
TAG_TILE_OFFSETS = 324
TAG_TILE_BYTE_COUNTS = 325
TAG_SUB_IFDS = 330
TAG_INK_SET = 332
TAG_EXTRA_SAMPLES = 338
TAG_SAMPLE_FORMAT = 339
TAG_JPEG_TABLES = 347
TAG_MODEL_PIXEL_SCALE = 33550
TAG_MODEL_TIEPOINT = 33922
TAG_MODEL_TRANSFORMATION = 34264
TAG_GEO_KEY_DIRECTORY = 34735
TAG_GEO_DOUBLE_PARAMS = 34736
TAG_GEO_ASCII_PARAMS = 34737
TAG_GDAL_METADATA = 42112
TAG_GDAL_NODATA = 42113
TAG_LERC_PARAMETERS = 50674

WANTED_TAGS = frozenset(
    v for k, v in globals().items() if k.startswith("TAG_") and isinstance(v, int)
)
# Tags that hold sizes, counts, offsets or codes: only integer field types are accepted, so a
# NaN or fractional "ImageLength" is refused at parse time instead of breaking later maths.
INTEGER_TAGS = frozenset({
    TAG_NEW_SUBFILE_TYPE, TAG_IMAGE_WIDTH, TAG_IMAGE_LENGTH, TAG_BITS_PER_SAMPLE, TAG_COMPRESSION,
    TAG_PHOTOMETRIC, TAG_STRIP_OFFSETS, TAG_SAMPLES_PER_PIXEL, TAG_ROWS_PER_STRIP, TAG_STRIP_BYTE_COUNTS,
    TAG_PLANAR_CONFIGURATION, TAG_PREDICTOR, TAG_TILE_WIDTH, TAG_TILE_LENGTH, TAG_TILE_OFFSETS,
    TAG_TILE_BYTE_COUNTS, TAG_EXTRA_SAMPLES, TAG_SAMPLE_FORMAT, TAG_GEO_KEY_DIRECTORY, TAG_SUB_IFDS,
    TAG_INK_SET,
})
INTEGER_FIELD_TYPES = frozenset({1, 3, 4, 6, 8, 9, 13, 16, 17, 18})

# TIFF field type -> (numpy dtype code, item size)
FIELD_TYPES: dict[int, tuple[str, int]] = {
    1: ("u1", 1),  # BYTE
    2: ("S1", 1),  # ASCII
    3: ("u2", 2),  # SHORT
    4: ("u4", 4),  # LONG
    5: ("u4", 8),  # RATIONAL (two LONGs)
    6: ("i1", 1),  # SBYTE
    7: ("u1", 1),  # UNDEFINED
    8: ("i2", 2),  # SSHORT
    9: ("i4", 4),  # SLONG
    10: ("i4", 8),  # SRATIONAL
    11: ("f4", 4),  # FLOAT
    12: ("f8", 8),  # DOUBLE
    13: ("u4", 4),  # IFD
    16: ("u8", 8),  # LONG8
    17: ("i8", 8),  # SLONG8
    18: ("u8", 8),  # IFD8
}


class NeedBytes(Exception):
    """Internal signal: the parse needs these ``[start, end)`` ranges first."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        super().__init__(ranges)
        self.ranges = ranges


class SparseBuffer:
    """Byte segments of one file fetched so far, addressed by absolute offset."""

    def __init__(self, file_size: int | None = None) -> None:
        self.file_size = file_size
        self._segments: list[tuple[int, bytes]] = []

    def add(self, start: int, data: bytes) -> None:
        self._segments.append((start, bytes(data)))
        self._segments.sort(key=lambda s: s[0])

    def has(self, start: int, end: int) -> bool:
        return any(s <= start and end <= s + len(d) for s, d in self._segments)

    def get(self, start: int, length: int) -> bytes:
        end = start + length
        for s, d in self._segments:
            if s <= start and end <= s + len(d):
                return d[start - s : end - s]
        raise NeedBytes([(start, end)])

    @property
    def fetched_bytes(self) -> int:
        return sum(len(d) for _, d in self._segments)


@dataclass
class Ifd:
    """One Image File Directory: its offset and the values of the tags rasteret uses."""

    offset: int
    tags: dict[int, np.ndarray | bytes] = field(default_factory=dict)
    sub: bool = False  # reached through a SubIFDs tag, not the main IFD chain

    def scalar(self, tag: int, default: int | None = None) -> int | None:
        value = self.tags.get(tag)
        if value is None or isinstance(value, bytes) or value.size == 0:
            return default
        return int(value.flat[0])

    def array(self, tag: int) -> np.ndarray | None:
        value = self.tags.get(tag)
        return None if value is None or isinstance(value, bytes) else value

    def text(self, tag: int) -> str | None:
        value = self.tags.get(tag)
        if value is None:
            return None
        raw = value if isinstance(value, bytes) else value.tobytes()
        return raw.split(b"\x00", 1)[0].decode("latin-1")


@dataclass
class TiffStructure:
    byte_order: str  # "<" or ">"
    bigtiff: bool
    ifds: list[Ifd]
    ghost: dict[str, str]


def parse_tiff(buf: SparseBuffer, url: str) -> TiffStructure:
    """Parse the header and every IFD of a TIFF from ``buf``.

    Raises :class:`NeedBytes` when more bytes are needed, or a ``CogError`` subclass when
    the bytes are not a readable TIFF.
    """
    head = _get(buf, 0, 8, url, "file header")
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        raise NotATiffError(url, "not a TIFF file (no II/MM byte-order mark)")
    (magic,) = struct.unpack(bo + "H", head[2:4])
    if magic == 42:
        bigtiff = False
        (first,) = struct.unpack(bo + "I", head[4:8])
        header_end = 8
    elif magic == 43:
        bigtiff = True
        rest = _get(buf, 8, 8, url, "BigTIFF header")
        offsize, zero = struct.unpack(bo + "HH", head[4:8])
        if offsize != 8 or zero != 0:
            raise InvalidTiffError(url, f"BigTIFF header has offset size {offsize}, expected 8")
        (first,) = struct.unpack(bo + "Q", rest)
        header_end = 16
    else:
        raise NotATiffError(url, f"not a TIFF file (magic number {magic}, expected 42 or 43)")

    ghost = _parse_ghost(buf, header_end)
    ifds: list[Ifd] = []
    seen: set[int] = set()

    def chain(offset: int, sub: bool) -> None:
        while offset:
            if offset in seen:
                if sub:  # a SubIFD listed twice
                    return
                raise InvalidTiffError(url, f"IFD chain loops back to offset {offset}")
            if len(ifds) >= MAX_IFDS:
                raise InvalidTiffError(url, f"more than {MAX_IFDS} IFDs")
            if offset < header_end:
                raise InvalidTiffError(url, f"IFD offset {offset} points into the file header")
            seen.add(offset)
            ifd, next_offset = _parse_ifd(buf, offset, bo, bigtiff, url)
            ifd.sub = sub
            ifds.append(ifd)
            if sub:
                return  # GDAL reads each listed SubIFD alone: their next-IFD links are not followed
            # SubIFDs (e.g. overviews written by tifffile or DNG tools) follow their parent, the
            # order GDAL lists them in; as in GDAL, only the first IFD's SubIFDs are images of
            # this file (later pages' SubIFDs belong to those pages)
            children = ifd.array(TAG_SUB_IFDS)
            if children is not None and len(ifds) == 1:
                for child in children:
                    chain(int(child), True)
            offset = next_offset

    chain(first, False)
    if not ifds:
        raise InvalidTiffError(url, "the file has no image (first IFD offset is 0)")
    return TiffStructure(bo, bigtiff, ifds, ghost)


def _check_range(buf: SparseBuffer, start: int, length: int, url: str, what: str) -> None:
    if buf.file_size is not None and start + length > buf.file_size:
        raise TruncatedHeaderError(
            url, f"{what} at bytes {start}-{start + length} lies past the end of the file ({buf.file_size} bytes)"
        )


def _get(buf: SparseBuffer, start: int, length: int, url: str, what: str) -> bytes:
    _check_range(buf, start, length, url, what)
    return buf.get(start, length)


def _parse_ghost(buf: SparseBuffer, start: int) -> dict[str, str]:
    """GDAL's COG 'ghost' header: key=value lines right after the TIFF header."""
    marker = b"GDAL_STRUCTURAL_METADATA_SIZE="
    if not buf.has(start, start + len(marker) + 14):
        return {}
    line = buf.get(start, len(marker) + 14)
    if not line.startswith(marker):
        return {}
    try:
        size = int(line[len(marker) : len(marker) + 6])
    except ValueError:
        return {}
    size = min(size, MAX_GHOST_BYTES)
    body_start = start + len(marker) + 13  # "NNNNNN bytes\n"
    if not buf.has(body_start, body_start + size):
        return {}
    text = buf.get(body_start, size).decode("latin-1", "replace")
    out = {}
    for item in text.splitlines():
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _parse_ifd(buf: SparseBuffer, offset: int, bo: str, bigtiff: bool, url: str) -> tuple[Ifd, int]:
    count_size, entry_size, next_size = (8, 20, 8) if bigtiff else (2, 12, 4)
    raw_count = _get(buf, offset, count_size, url, "IFD entry count")
    (count,) = struct.unpack(bo + ("Q" if bigtiff else "H"), raw_count)
    if count == 0 or count > MAX_IFD_ENTRIES:
        raise InvalidTiffError(url, f"IFD at {offset} claims {count} entries")
    body_len = count * entry_size + next_size
    body = _get(buf, offset + count_size, body_len, url, "IFD entries")
    (next_offset,) = struct.unpack(bo + ("Q" if bigtiff else "I"), body[-next_size:])

    ifd = Ifd(offset)
    missing: list[tuple[int, int]] = []
    inline_size = 8 if bigtiff else 4
    entry_fmt = bo + ("HHQ" if bigtiff else "HHI")
    head_size = 12 if bigtiff else 8
    for i in range(count):
        entry = body[i * entry_size : (i + 1) * entry_size]
        tag, ftype, n = struct.unpack(entry_fmt, entry[:head_size])
        if tag not in WANTED_TAGS or ftype not in FIELD_TYPES:
            continue
        if tag in INTEGER_TAGS and ftype not in INTEGER_FIELD_TYPES:
            raise InvalidTiffError(url, f"tag {tag} has field type {ftype}; it must hold integers")
        code, size = FIELD_TYPES[ftype]
        nbytes = n * size
        if nbytes > MAX_TAG_BYTES:
            raise InvalidTiffError(url, f"tag {tag} claims {n} values ({nbytes} bytes)")
        value_field = entry[head_size:]
        if nbytes <= inline_size:
            raw = value_field[:nbytes]
        else:
            (value_offset,) = struct.unpack(bo + ("Q" if bigtiff else "I"), value_field)
            _check_range(buf, value_offset, nbytes, url, f"value of tag {tag}")
            if not buf.has(value_offset, value_offset + nbytes):
                missing.append((value_offset, value_offset + nbytes))
                continue
            raw = buf.get(value_offset, nbytes)
        ifd.tags[tag] = _decode_value(raw, ftype, n, bo)
    if missing:
        raise NeedBytes(missing)
    return ifd, next_offset


def _decode_value(raw: bytes, ftype: int, n: int, bo: str) -> np.ndarray | bytes:
    if ftype in (2, 7) or (ftype == 1 and n > 64):
        return bytes(raw)
    code, size = FIELD_TYPES[ftype]
    count = n * 2 if ftype in (5, 10) else n
    arr = np.frombuffer(raw, dtype=np.dtype(bo + code), count=count)
    if ftype in (5, 10):
        pairs = arr.reshape(-1, 2).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return pairs[:, 0] / pairs[:, 1]
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)
