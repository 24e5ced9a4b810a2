"""Files GDAL reads with a conversion or an unusual layout: read as rasterio reads them, or
refused with an error naming the codec or feature. Every file is written here by GDAL
(through rasterio) or tifffile, and every expected value comes from rasterio reading it."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pyarrow as pa
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from rasteret_core.cog import CogHeader, UnsupportedCodecError, UnsupportedTiffError, read_header, read_window
from rasteret_core.cog.codecs import decode_tile
from rasteret_core.cog.header import parse_nodata

TRANSFORM = from_origin(500000, 4000000, 10, 10)


def _write(path, data: np.ndarray, **options) -> str:
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, crs="EPSG:32633", transform=TRANSFORM)
    profile.update(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return str(path)


def _noise(shape, high=256, dtype="uint8", seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def _rasterio_read(path: str, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, **kwargs) as src:
            return src.read()


# --- CMYK -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bands,options", [
    (4, {}), (5, {}), (4, {"interleave": "band"}), (4, {"tiled": True, "blockxsize": 16, "blockysize": 16}),
], ids=["cmyk", "cmyk-plus-alpha", "cmyk-planar", "cmyk-tiled"])
def test_cmyk_reads_as_gdal_rgba_by_default_and_raw_on_request(tmp_path, bands, options):
    path = _write(tmp_path / "cmyk.tif", _noise((bands, 37, 45)), photometric="CMYK", **options)
    header = read_header(path)
    rgba = read_window(header, None)
    truth = _rasterio_read(path)
    assert header.count == truth.shape[0] == 4
    np.testing.assert_array_equal(rgba, truth)
    # GDAL's GTIFF_RAW: prefix returns the inks as stored; so does cmyk="raw"
    raw_header = read_header(path, cmyk="raw")
    assert raw_header.count == bands
    np.testing.assert_array_equal(read_window(raw_header, ((3, 20), (5, 40))), _rasterio_read("GTIFF_RAW:" + path)[:, 3:20, 5:40])


def test_cmyk_conversion_survives_the_arrow_round_trip(tmp_path):
    path = _write(tmp_path / "cmyk.tif", _noise((4, 20, 20)), photometric="CMYK")
    header = read_header(path)
    row = pa.array([header.to_arrow_dict()], type=CogHeader.arrow_type()).to_pylist()[0]
    back = CogHeader.from_arrow_dict(row)
    assert back == header and back.count == 4
    np.testing.assert_array_equal(read_window(back, None), _rasterio_read(path))


def test_16_bit_cmyk_stays_raw_as_gdal_keeps_it(tmp_path):
    path = _write(tmp_path / "cmyk16.tif", _noise((4, 20, 20), 65536, "uint16"), photometric="CMYK")
    header = read_header(path)
    assert header.color_conversion is None and header.count == 4
    np.testing.assert_array_equal(read_window(header, None), _rasterio_read(path))


# --- NBITS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [b for b in range(1, 32) if b not in (8, 16)])
def test_every_nbits_width_gdal_writes_unpacks_as_gdal(tmp_path, bits):
    dtype = "uint8" if bits < 8 else "uint16" if bits < 16 else "uint32"
    # 2 bands pixel-interleaved, 23 columns: rows end mid-byte, so row padding is exercised
    path = _write(tmp_path / f"nbits{bits}.tif", _noise((2, 11, 23), 2**bits, dtype, seed=bits), nbits=bits,
                  blockysize=4)
    header = read_header(path)
    assert header.bits_per_sample == bits and header.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(read_window(header, None), _rasterio_read(path))


def test_odd_bit_depths_with_a_predictor_are_refused_by_name(tmp_path):
    path = _write(tmp_path / "nbits12.tif", _noise((1, 8, 8), 4096, "uint16"), nbits=12)
    # GDAL will not write it (libtiff refuses horizontal differencing on 12-bit samples): add the tag
    patched = tmp_path / "nbits12-pred.tif"
    patched.write_bytes(_with_predictor(open(path, "rb").read()))
    with pytest.raises(UnsupportedTiffError, match="predictor 2 on 12-bit samples"):
        read_header(patched)


# --- overviews ---------------------------------------------------------------------------------
def test_overviews_keep_the_file_order_gdal_numbers_them_in(tmp_path):
    path = _write(tmp_path / "ov.tif", _noise((1, 200, 256)), tiled=True, blockxsize=64, blockysize=64)
    for levels in ([4], [2, 8]):
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews(levels, Resampling.nearest)
    header = read_header(path)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [4, 2, 8]
    assert [o.width for o in header.overviews] == [64, 128, 32]
    for level in range(3):
        np.testing.assert_array_equal(read_window(header, None, overview=level), _rasterio_read(path, overview_level=level))


def test_subifd_overviews_are_seen_as_gdal_sees_them(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    image = _noise((200, 256))
    path = tmp_path / "subifd.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(image, tile=(64, 64), subifds=2, compression="zlib")
        tw.write(image[::2, ::2], tile=(64, 64), subfiletype=1, compression="zlib")
        tw.write(image[::4, ::4], tile=(64, 64), subfiletype=1, compression="zlib")
    header = read_header(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:
            factors = src.overviews(1)
    assert len(header.overviews) == len(factors) == 2
    for level in range(2):
        np.testing.assert_array_equal(read_window(header, None, overview=level), _rasterio_read(str(path), overview_level=level))


# --- nodata -------------------------------------------------------------------------------------
NODATA_CASES = [
    ("float32", -3.4e38), ("float32", 0.1), ("float32", 1e39), ("float32", -3.4028235e38), ("float32", float("nan")),
    ("float64", 0.1), ("uint8", -10000), ("uint8", 300), ("uint8", 3.5), ("uint8", 255.0000001), ("int16", -1e10),
    ("uint16", -1), ("int8", -128), ("uint32", 4294967295), ("int64", -9223372036854775808), ("uint64", 2**64 - 1),
]


@pytest.mark.parametrize("dtype,value", NODATA_CASES, ids=[f"{d}-{v}" for d, v in NODATA_CASES])
def test_nodata_is_what_gdal_reports(tmp_path, dtype, value):
    path = _write(tmp_path / "nd.tif", np.zeros((1, 4, 4), dtype))
    with rasterio.open(path, "r+") as dst:  # set afterwards: rasterio refuses some at creation
        dst.nodata = value
    with rasterio.open(path) as src:
        expected = src.nodata
    got = read_header(path).nodata
    if expected is None or np.isnan(expected):
        assert got is expected or (got is not None and np.isnan(got) and np.isnan(expected))
    else:
        assert got == expected


def test_nodata_text_parsing_without_a_dtype_keeps_the_plain_value():
    assert parse_nodata(" -3.4e+38 ") == -3.4e38
    assert parse_nodata("abc") is None and parse_nodata("") is None


# --- CRS ------------------------------------------------------------------------------------------
CRS_CASES = {
    "lcc-nad83": "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +x_0=0 +y_0=0 +datum=NAD83 +units=m +no_defs",
    "utm33-proj4": "+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs",
    "longlat-wgs84": "+proj=longlat +datum=WGS84 +no_defs",
    "longlat-grs80": "+proj=longlat +ellps=GRS80 +no_defs",
    "modis-sinusoidal": "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs",
    "web-mercator-proj4": "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
                          "+nadgrids=@null +wktext +no_defs",
    "tmerc-us-feet": "+proj=tmerc +lat_0=0 +lon_0=-93 +k=0.9996 +x_0=500000 +y_0=0 +datum=NAD83 +units=us-ft +no_defs",
    "epsg-3035": "EPSG:3035",
}


@pytest.mark.parametrize("name", list(CRS_CASES))
def test_crs_is_identified_as_gdal_does_and_kept_as_wkt(tmp_path, name):
    path = _write(tmp_path / "crs.tif", np.zeros((1, 4, 4), "uint8"), crs=CRS_CASES[name])
    header = read_header(path)
    with rasterio.open(path) as src:
        assert header.crs_epsg == src.crs.to_epsg()
        crs = CRS.from_wkt(header.crs_wkt) if header.crs_wkt else CRS.from_epsg(header.crs_epsg)
        assert crs == src.crs
    if header.crs_epsg is None:
        row = pa.array([header.to_arrow_dict()], type=CogHeader.arrow_type()).to_pylist()[0]
        assert CogHeader.from_arrow_dict(row).crs_wkt == header.crs_wkt


# --- refusals name the codec -------------------------------------------------------------------------
@pytest.mark.parametrize("compress,name", [
    ("CCITTFAX4", "CCITT G4 fax"), ("CCITTFAX3", "CCITT G3 fax"), ("CCITTRLE", "CCITT RLE"),
])
def test_fax_codecs_gdal_writes_are_refused_by_name(tmp_path, compress, name):
    path = _write(tmp_path / "fax.tif", _noise((1, 16, 16), 2), nbits=1, compress=compress)
    with pytest.raises(UnsupportedCodecError, match=name):
        read_header(path)


@pytest.mark.parametrize("code,name", [
    (6, "OJPEG"), (34676, "LogLuv"), (34677, "LogLuv 24-bit"), (34712, "JPEG 2000"), (50002, "JPEG XL"),
    (32909, "PixarLog"), (12345, "unknown compression code 12345"),
])
def test_other_codecs_are_refused_by_name(tmp_path, code, name):
    path = _write(tmp_path / "plain.tif", _noise((1, 8, 8)))
    data = bytearray(open(path, "rb").read())
    _set_tag(data, 259, code)
    patched = tmp_path / "coded.tif"
    patched.write_bytes(bytes(data))
    with pytest.raises(UnsupportedCodecError, match=name) as info:
        read_header(patched)
    assert "unknown(" not in str(info.value)


# --- byte patching helpers for the refusal cases (classic little-endian TIFFs from GDAL) ---------------
def _entries(data: bytes):
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    for i in range(count):
        at = first + 2 + 12 * i
        yield at, struct.unpack_from("<HHI", data, at)


def _set_tag(data: bytearray, tag: int, value: int) -> None:
    for at, (t, ftype, _n) in _entries(data):
        if t == tag:
            struct.pack_into("<H" if ftype == 3 else "<I", data, at + 8, value)
            return
    raise AssertionError(f"tag {tag} not in the file")


def _with_predictor(data: bytes) -> bytes:
    """The same file with a Predictor=2 entry appended to its first IFD (IFD moved to the end)."""
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    entries = [data[first + 2 + 12 * i : first + 14 + 12 * i] for i in range(count)]
    entries.append(struct.pack("<HHIHH", 317, 3, 1, 2, 0))
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    (next_ifd,) = struct.unpack_from("<I", data, first + 2 + 12 * count)
    new_at = len(data) + len(data) % 2
    out = bytearray(data) + b"\x00" * (new_at - len(data))
    out += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", next_ifd)
    struct.pack_into("<I", out, 4, new_at)
    return bytes(out)


# --- JPEG tiles shorter than the tile -----------------------------------------------------------------
def test_jpeg_edge_tiles_coded_only_as_large_as_the_image_read_as_gdal_reads_them(tmp_path):
    """Some writers code the right and bottom edge tiles only as large as the image there;
    libtiff (GDAL) decodes them (with a warning), and so does the reader."""
    import imagecodecs

    path = _write(tmp_path / "jpeg.tif", _noise((1, 70, 100)) // 4 * 4, compress="JPEG", tiled=True,
                  blockxsize=64, blockysize=64)
    header = read_header(path)
    data = bytearray(open(path, "rb").read())
    with rasterio.open(path) as src:
        pixels = src.read(1)
    offsets, counts = list(header.tile_offsets), list(header.tile_byte_counts)
    for tile in range(len(offsets)):
        row, col = divmod(tile, header.tiles_across)
        part = pixels[row * 64 : row * 64 + 64, col * 64 : col * 64 + 64]
        if part.shape == (64, 64):
            continue
        coded = imagecodecs.jpeg8_encode(np.ascontiguousarray(part), level=95)
        offsets[tile], counts[tile] = len(data), len(coded)
        data += coded
    _set_array(data, 324, offsets)
    _set_array(data, 325, counts)
    patched = tmp_path / "jpeg-short-tiles.tif"
    patched.write_bytes(bytes(data))
    ours = read_window(read_header(patched), None)
    np.testing.assert_array_equal(ours, _rasterio_read(str(patched)))


def _set_array(data: bytearray, tag: int, values) -> None:
    """Rewrite the SHORT/LONG array of ``tag`` in place (same count; the values must fit)."""
    for at, (t, ftype, n) in _entries(data):
        if t == tag:
            code, size = {3: ("H", 2), 4: ("I", 4)}[ftype]
            assert n == len(values) and max(values) < 2 ** (8 * size)
            where = at + 8 if n * size <= 4 else struct.unpack_from("<I", data, at + 8)[0]
            struct.pack_into(f"<{n}{code}", data, where, *(int(v) for v in values))
            return
    raise AssertionError(f"tag {tag} not in the file")


# --- property: NBITS unpacking against a plain bit-by-bit packer --------------------------------------
def _pack_rows(values: np.ndarray, bits: int) -> bytes:
    """libtiff's packing, written out bit by bit: MSB first, each row padded to a whole byte."""
    out = bytearray()
    for row in values.reshape(values.shape[0], -1):
        acc, nacc = 0, 0
        for v in row.tolist():
            acc, nacc = (acc << bits) | int(v), nacc + bits
            while nacc >= 8:
                nacc -= 8
                out.append((acc >> nacc) & 0xFF)
        if nacc:
            out.append((acc << (8 - nacc)) & 0xFF)
            acc, nacc = 0, 0
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(bits=st.sampled_from([b for b in range(1, 32) if b not in (8, 16)]), rows=st.integers(1, 9),
       width=st.integers(1, 19), samples=st.integers(1, 3), tiled=st.booleans(), seed=st.integers(0, 2**16))
def test_nbits_samples_unpack_like_a_bit_by_bit_reading(bits, rows, width, samples, tiled, seed):
    dtype = "uint8" if bits < 8 else "uint16" if bits < 16 else "uint32"
    values = np.random.default_rng(seed).integers(0, 2**bits, (rows, width, samples)).astype(dtype)
    header = CogHeader(
        url="mem://nbits.tif", width=width, height=rows, tile_width=width, tile_height=rows, samples_per_pixel=samples,
        planar_configuration=1, dtype=np.dtype(dtype), bits_per_sample=bits, sample_format=1, compression=1,
        predictor=1, photometric=1, tile_offsets=[8], tile_byte_counts=[1], is_tiled=tiled,
    )
    np.testing.assert_array_equal(decode_tile(header, _pack_rows(values, bits)), values)


@pytest.mark.parametrize("keys", [
    # user-defined projected CRS: WGS 84 + the UTM zone 33N projection (EPSG 16033)
    [(1024, 1), (1025, 1), (2048, 4326), (3072, 32767), (3074, 16033), (3076, 9001)],
    # user-defined geographic CRS on the WGS 84 datum, in degrees
    [(1024, 2), (1025, 1), (2048, 32767), (2050, 6326), (2054, 9102)],
    # user-defined geographic CRS on the NAD83 datum
    [(1024, 2), (1025, 1), (2048, 32767), (2050, 6269), (2054, 9102)],
], ids=["utm33-by-projection-code", "wgs84-datum", "nad83-datum"])
def test_user_defined_geokeys_are_resolved_as_gdal_resolves_them(tmp_path, keys):
    from rasteret_core.cog.geokeys import _geokey_tiff

    directory = [1, 1, 0, len(keys)] + [v for key, value in keys for v in (key, 0, 1, value)]
    path = tmp_path / "user-defined.tif"
    path.write_bytes(_geokey_tiff(tuple(directory), (), b""))
    header = read_header(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:
            assert src.crs is not None
            assert header.crs_epsg == src.crs.to_epsg()
            assert CRS.from_user_input(header.crs) == src.crs
