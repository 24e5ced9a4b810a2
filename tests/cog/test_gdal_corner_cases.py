"""The last corner cases a third-party TIFF corpus found against GDAL: CMYK with extra samples or
an ``InkSet``, SubIFDs beyond the first page's, and WebP with a channel count WebP cannot hold.

Every file is written here (tifffile, with tags GDAL does not write), every expected value comes
from rasterio reading the same file, and a file GDAL itself cannot read must be refused by name.
"""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasteret_core.cog import UnsupportedCodecError, UnsupportedTiffError, read_header, read_window

tifffile = pytest.importorskip("tifffile")
imagecodecs = pytest.importorskip("imagecodecs")

TAG_INK_SET = 332
TAG_SUB_IFDS = 330
INK_NAMES = b"Cyan\0Magenta\0Yellow\0Black\0Spot\0"


def _rasterio_read(path, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, **kwargs) as src:
            return src.read()


def _rasterio_overviews(path) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:
            return src.overviews(1)


def _write_cmyk(path, samples: int, *, extrasamples: int | None = 0, inkset: int | None = None, tile=None,
                compression="zlib", dtype="uint8", bits: int | None = None, seed: int = 0) -> str:
    high = 2**bits if bits else 256
    data = np.random.default_rng(seed).integers(0, high, (37, 45, samples)).astype(dtype)
    tags = [(TAG_INK_SET, "H", 1, inkset, True)] if inkset is not None else []
    if inkset == 2:  # multi-ink files name their inks
        tags.append((333, "s", len(INK_NAMES), INK_NAMES, True))
    options = dict(photometric="separated", tile=tile, compression=compression, extratags=tags)
    if samples > 4 and extrasamples is not None:
        options["extrasamples"] = [extrasamples] * (samples - 4)
    if bits:
        options["bitspersample"] = bits
    tifffile.imwrite(path, data, **options)
    return str(path)


# --- CMYK with extra samples --------------------------------------------------------------------
@pytest.mark.parametrize("extrasamples", [0, 1, 2], ids=["unspecified", "associated-alpha", "unassociated-alpha"])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["strips", "tiles"])
def test_cmyk_with_an_extra_sample_reads_as_the_4_rgba_bands_gdal_returns(tmp_path, extrasamples, tile):
    path = _write_cmyk(tmp_path / "cmyk5.tif", 5, extrasamples=extrasamples, tile=tile)
    truth = _rasterio_read(path)
    header = read_header(path)
    assert header.count == truth.shape[0] == 4
    np.testing.assert_array_equal(read_window(header, None), truth)
    # the extra sample is still there for whoever asks for the inks as stored
    raw = read_header(path, cmyk="raw")
    assert raw.count == 5
    np.testing.assert_array_equal(read_window(raw, None), _rasterio_read("GTIFF_RAW:" + path))


# --- InkSet ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("inkset", [None, 1, 2, 0, 3], ids=["absent", "cmyk", "multi-ink", "zero", "unknown-3"])
@pytest.mark.parametrize("samples", [4, 5])
def test_tiled_cmyk_is_converted_only_when_its_inkset_is_cmyk_as_libtiff_decides(tmp_path, inkset, samples):
    """libtiff's RGBA interface (which GDAL asks for) takes InkSet CMYK (1) or no InkSet; any other
    value, a stray 0 included, keeps the samples as stored."""
    path = _write_cmyk(tmp_path / "ink.tif", samples, inkset=inkset, tile=(16, 16), extrasamples=2)
    truth = _rasterio_read(path)
    header = read_header(path)
    assert header.count == truth.shape[0]
    np.testing.assert_array_equal(read_window(header, None), truth)
    np.testing.assert_array_equal(read_window(header, ((5, 30), (3, 41))), truth[:, 5:30, 3:41])


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_cmyk_below_8_bits_is_refused_by_name_as_gdal_cannot_read_it(tmp_path, bits):
    """GDAL announces 4 RGBA bands, then libtiff's RGBA interface fails on every block."""
    path = _write_cmyk(tmp_path / "cmyk-low.tif", 4, bits=bits, compression=None)
    with pytest.raises(rasterio.errors.RasterioIOError):
        _rasterio_read(path)
    with pytest.raises(UnsupportedTiffError, match=f"{bits}-bit CMYK"):
        read_header(path)
    # the inks as stored, as GDAL's GTIFF_RAW: prefix reads them
    raw = read_header(path, cmyk="raw")
    np.testing.assert_array_equal(read_window(raw, None), _rasterio_read("GTIFF_RAW:" + path))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.integers(4, 6), extrasamples=st.sampled_from([None, 0, 1, 2]),
       inkset=st.sampled_from([None, 0, 1, 2]), tiled=st.booleans(), signed=st.booleans(),
       seed=st.integers(0, 2**16))
def test_8_bit_cmyk_reads_as_rasterio_whatever_its_inks_and_extra_samples(tmp_path, samples, extrasamples, inkset,
                                                                          tiled, signed, seed):
    path = _write_cmyk(tmp_path / "any-cmyk.tif", samples, extrasamples=extrasamples, inkset=inkset,
                       tile=(16, 16) if tiled else None, dtype="int8" if signed else "uint8", seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:
            dtype, truth = np.dtype(src.dtypes[0]), src.read()
    header = read_header(path)
    assert (header.count, header.dtype) == (truth.shape[0], dtype)
    np.testing.assert_array_equal(read_window(header, None), truth)


# --- SubIFDs --------------------------------------------------------------------------------------
def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype("uint8")


def _assert_overviews_as_gdal(path) -> None:
    header = read_header(path)
    factors = _rasterio_overviews(path)
    assert len(header.overviews) == len(factors)
    for level in range(len(factors)):
        np.testing.assert_array_equal(read_window(header, None, overview=level),
                                      _rasterio_read(str(path), overview_level=level))


def test_subifds_of_a_later_page_are_not_counted_as_overviews(tmp_path):
    """The first page's SubIFDs are its overviews; a second page carrying SubIFDs of its own is
    another image (GDAL lists 2 overviews here; 4 were counted before)."""
    image = _noise((200, 256))
    path = tmp_path / "pages-with-subifds.tif"
    tiles = dict(tile=(64, 64), compression="zlib")
    with tifffile.TiffWriter(path) as tw:
        tw.write(image, subifds=2, **tiles)
        tw.write(image[::2, ::2], subfiletype=1, **tiles)
        tw.write(image[::4, ::4], subfiletype=1, **tiles)
        tw.write(image[::2, ::2], subifds=1, subfiletype=1, **tiles)
        tw.write(image[::8, ::8], subfiletype=1, **tiles)
    assert len(_rasterio_overviews(path)) == 2
    _assert_overviews_as_gdal(path)


def test_a_subifd_chain_counts_only_the_subifds_the_tag_lists(tmp_path):
    """tifffile links its SubIFDs into a chain and lists each; GDAL visits the listed ones only,
    so a tag listing the first of two chained SubIFDs gives one overview."""
    image = _noise((200, 256))
    path = tmp_path / "subifd-chain.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(image, tile=(64, 64), subifds=2)
        tw.write(image[::2, ::2], tile=(64, 64), subfiletype=1)
        tw.write(image[::4, ::4], tile=(64, 64), subfiletype=1)
    data = bytearray(path.read_bytes())
    _list_only_the_first_subifd(data)
    path.write_bytes(bytes(data))
    assert len(_rasterio_overviews(path)) == 1
    _assert_overviews_as_gdal(path)


def _list_only_the_first_subifd(data: bytearray) -> None:
    """Shrink the first IFD's SubIFDs entry (classic little-endian TIFF) to its first offset."""
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    for i in range(count):
        at = first + 2 + 12 * i
        tag, ftype, n, value = struct.unpack_from("<HHII", data, at)
        if tag == TAG_SUB_IFDS:
            assert n == 2 and ftype in (4, 13)
            (child,) = struct.unpack_from("<I", data, value)
            struct.pack_into("<II", data, at + 4, 1, child)
            return
    raise AssertionError("no SubIFDs tag in the first IFD")


# --- WebP channel counts ----------------------------------------------------------------------------
@pytest.mark.parametrize("samples,planar", [(5, "contig"), (2, "contig"), (3, "separate")],
                         ids=["5-bands", "2-bands", "3-planes"])
def test_webp_with_a_channel_layout_webp_cannot_hold_is_refused_by_codec_name(tmp_path, samples, planar):
    """WebP holds RGB or RGBA, interleaved; libtiff refuses other layouts, so GDAL cannot read them."""
    rng = np.random.default_rng(samples)
    chunks = 4 if planar == "contig" else 4 * samples
    tiles = [imagecodecs.webp_encode(rng.integers(0, 256, (32, 32, 4)).astype("uint8"), lossless=True)
             for _ in range(chunks)]
    shape = (64, 64, samples) if planar == "contig" else (samples, 64, 64)
    path = tmp_path / "webp.tif"
    tifffile.imwrite(path, iter(tiles), shape=shape, dtype="uint8", tile=(32, 32), compression="webp",
                     planarconfig=planar, photometric="rgb" if samples == 3 else "minisblack")
    with pytest.raises(rasterio.errors.RasterioIOError):
        _rasterio_read(path)
    layout = "separate planes" if planar == "separate" else f"{samples} samples per pixel"
    with pytest.raises(UnsupportedCodecError, match=rf"webp holds 3 \(RGB\) or 4 \(RGBA\) .*not {layout}"):
        read_header(path)
