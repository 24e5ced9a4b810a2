"""Hostile and random bytes give only the project's own errors, quickly, without big allocations."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasteret_core.cog import CogError
from rasteret_core.cog.codecs import check_supported, decode_tile
from rasteret_core.cog.header import build_header
from rasteret_core.cog.tiff import NeedBytes, SparseBuffer, parse_tiff

from ._shared import fixture_tiffs

TIFFS = fixture_tiffs()
SEEDS = {p.name: p.read_bytes()[:65536] for p in TIFFS if p.stat().st_size < 3_000_000}


def parse_bytes(data: bytes):
    """Parse like the reader does, with the whole (mutated) file available."""
    buf = SparseBuffer(len(data))
    buf.add(0, data)
    structure = parse_tiff(buf, "mem://fuzz.tif")
    header = build_header(structure, "mem://fuzz.tif", len(data))
    check_supported(header)
    return header


def parse_prefix(data: bytes, file_size: int):
    """Parse with only a prefix fetched: NeedBytes is the only other allowed outcome."""
    buf = SparseBuffer(file_size)
    buf.add(0, data)
    try:
        return build_header(parse_tiff(buf, "mem://fuzz.tif"), "mem://fuzz.tif", file_size)
    except NeedBytes:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes_raise_only_cog_errors(data):
    try:
        parse_bytes(data)
    except CogError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SEEDS)) if SEEDS else st.nothing(),
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=24),
)
def test_mutated_real_headers_raise_only_cog_errors(name, edits):
    data = bytearray(SEEDS[name])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    try:
        parse_bytes(bytes(data))
    except CogError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(SEEDS)) if SEEDS else st.nothing(),
    cut=st.integers(0, 4096),
)
def test_truncated_files_raise_only_cog_errors(name, cut):
    data = SEEDS[name][:cut]
    try:
        parse_bytes(data)
    except CogError:
        pass


def _tiff_with_entry(tag: int, ftype: int, count: int, value: int) -> bytes:
    entries = [(256, 3, 1, 16), (257, 3, 1, 16), (tag, ftype, count, value)]
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + body


def test_lying_tag_count_is_refused_before_allocating():
    data = _tiff_with_entry(324, 4, 2**32 - 1, 100)
    with pytest.raises(CogError, match="claims"):
        parse_bytes(data)


def test_offsets_beyond_end_of_file_are_reported_as_truncation():
    data = _tiff_with_entry(324, 4, 400, 10_000_000)
    with pytest.raises(CogError, match="past the end"):
        parse_bytes(data)


def test_ifd_loop_is_detected():
    body = struct.pack("<H", 1) + struct.pack("<HHII", 256, 3, 1, 16) + struct.pack("<I", 8)
    with pytest.raises(CogError, match="loops"):
        parse_bytes(b"II*\x00" + struct.pack("<I", 8) + body)


def test_not_a_tiff_names_the_reason():
    with pytest.raises(CogError, match="not a TIFF"):
        parse_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=256))
def test_random_tile_bytes_decode_or_raise_cog_error(data):
    path = next(p for p in TIFFS if p.name == "B04.tif")
    from rasteret_core.cog import read_header

    header = read_header(path)
    try:
        decode_tile(header, data)
    except CogError:
        pass


def test_decompression_bomb_is_refused():
    import zlib

    from rasteret_core.cog import DecodeError, read_header

    header = read_header(next(p for p in TIFFS if p.name == "B04.tif"))
    bomb = zlib.compress(bytes(header.tile_width * header.tile_height * 2 * 64))
    with pytest.raises(DecodeError, match="larger than a tile|more than"):
        decode_tile(header, bomb)


@pytest.mark.parametrize("ftype, value", [(11, struct.unpack("<I", struct.pack("<f", float("nan")))[0]), (12, 0)])
def test_size_tags_of_float_type_are_refused(ftype, value):
    # found by coverage-guided fuzzing: a NaN ImageLength used to escape as a ValueError
    with pytest.raises(CogError, match="must hold integers"):
        parse_bytes(_tiff_with_entry(257, ftype, 1, value))
