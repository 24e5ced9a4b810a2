"""A collection as a virtual Zarr store (Icechunk): every tile read by any Zarr reader, straight
from the original COGs, with no header request.

A collection already holds what a Zarr reader needs: each tile's offset and byte count, the
codec, the dtype and the grid. :func:`to_virtual_zarr` writes an Icechunk repository whose
chunks are references to those byte ranges: one group per date, scene and band
(``2024-01-05/S2A_..._L2A/B04``) holding the band on its native grid (chunk = COG tile) with CF
metadata (``scale_factor``/``add_offset`` from the stored radiometry rule, the nodata as fill
value, ``x``/``y`` coordinates and a ``spatial_ref`` grid mapping), so ``xarray.open_zarr``
gives the same values as rasterio. Icechunk rather than kerchunk JSON: it is transactional (a
refresh is a commit, readers never see half of one) and it is read by zarr 3 directly.

Codecs the Zarr side cannot decode are refused by name at export: uncompressed, DEFLATE and
ZSTD tiles of one sample per pixel are written, without a predictor or with TIFF's horizontal
predictor on integers (a codec this package registers with Zarr, see
:mod:`rasteret_core.collection.zarr_codecs`; other Zarr readers need it imported). Tiles live
on ``s3://`` (any S3-compatible endpoint); a reader authorises the buckets with
:func:`open_virtual_zarr`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.crs import CRS

from rasteret_core.cog import CogHeader
from rasteret_core.collection.store import Collection
from rasteret_core.errors import ArgumentError, UnsupportedCodecError
from rasteret_core.types import Bands, DateRange, known_bands

# TIFF compression codes the Zarr side decodes (zarr 3 and numcodecs' zarr 3 codecs)
_CODECS = {1: "none", 8: "deflate", 32946: "deflate", 50000: "zstd"}


@dataclass
class VirtualZarrReport:
    """What an export wrote: ``groups`` (``date/scene/band``), the virtual ``chunks``, and the
    bands skipped with the reason (a failed harvest, a codec Zarr cannot decode)."""

    path: str
    groups: list[str] = field(default_factory=list)
    chunks: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def to_virtual_zarr(collection: Collection, path: str | os.PathLike[str], *, bands: Bands | None = None,
                    date_range: DateRange | None = None, endpoint_url: str | None = None,
                    region: str | None = None) -> VirtualZarrReport:
    """Write an Icechunk repository at ``path`` (a local folder) referencing the tiles of
    ``collection``'s scenes: one group per date, scene and band (see the module doc). The export
    is one commit by one writer (Icechunk warns that a local repository is not safe for
    concurrent commits).

    ``endpoint_url`` / ``region`` describe where the ``s3://`` tiles are (default: AWS,
    ``AWS_ENDPOINT_URL``). A band whose codec Zarr cannot decode is skipped and listed in the
    report; when nothing can be written an :class:`UnsupportedCodecError` names the codec.
    """
    icechunk, zarr = _modules()
    codes = known_bands(bands, collection.bands, f"collection {collection.name!r}", "stored") if bands else collection.bands
    scenes = collection.scenes(date_range=date_range, bands=codes)
    report = VirtualZarrReport(os.fspath(path))
    refused: list[UnsupportedCodecError] = []
    planned: list[tuple[str, Any, str, CogHeader]] = []
    for scene in scenes:
        for band in codes:
            asset = scene.bands.get(band)
            if asset is None or asset.header is None:
                report.skipped.append((scene.id, band, (asset.error if asset else None) or "no header stored"))
                continue
            try:
                _check_codec(asset.header)
            except UnsupportedCodecError as exc:
                refused.append(exc)
                report.skipped.append((scene.id, band, exc.reason))
                continue
            planned.append((f"{scene.datetime.date().isoformat()}/{scene.id}/{band}", asset, band, asset.header))
    if not planned:
        if refused:
            raise refused[0]
        raise ArgumentError(f"collection {collection.name!r} has no readable band to export")
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(report.path),
                                      _config(icechunk, {_bucket_prefix(h.url) for *_, h in planned}, endpoint, region),
                                      authorize_virtual_chunk_access=_credentials(icechunk, {_bucket_prefix(h.url) for *_, h in planned}))
    session = repo.writable_session("main")
    root = zarr.open_group(store=session.store, mode="a", zarr_format=3)
    for name, asset, band, header in planned:
        report.chunks += _write_band(zarr, root, session.store, name, band, asset, header)
        report.groups.append(name)
    session.commit(f"{len(report.groups)} bands of {len({g.rsplit('/', 1)[0] for g in report.groups})} scenes"
                   f" from collection {collection.name!r}")
    return report


def open_virtual_zarr(path: str | os.PathLike[str], *, endpoint_url: str | None = None, region: str | None = None,
                      anonymous: bool = True) -> Any:
    """The read-only Zarr store of an exported repository, its buckets authorised for reading
    (anonymously, or with the AWS chain of this process when ``anonymous=False``):
    ``xarray.open_zarr(store, group="2024-01-05/<scene>/B04", consolidated=False)``."""
    icechunk, _ = _modules()
    storage = icechunk.local_filesystem_storage(os.fspath(path))
    containers = [c.url_prefix for c in icechunk.Repository.fetch_config(storage).virtual_chunk_containers.values()]
    repo = icechunk.Repository.open(storage, authorize_virtual_chunk_access=_credentials(icechunk, containers, anonymous))
    return repo.readonly_session("main").store


def _write_band(zarr: Any, root: Any, store: Any, name: str, band: str, asset: Any, header: CogHeader) -> int:
    """One band's group: the data array of virtual tile references, x / y and the grid mapping."""
    from numcodecs.zarr3 import Zlib, Zstd  # optional: only exports need the Zarr codecs

    from rasteret_core.collection.zarr_codecs import TiffHorizontalPredictor

    group = root.require_group(name)
    codec = _CODECS[header.compression]
    compressors = [] if codec == "none" else [Zlib()] if codec == "deflate" else [Zstd()]
    filters = [TiffHorizontalPredictor()] if header.predictor == 2 else []
    attrs: dict[str, Any] = {"grid_mapping": "spatial_ref", "rasteret:href": asset.href}
    if asset.scale is not None:
        attrs.update(scale_factor=asset.scale, add_offset=asset.offset or 0.0)
    fill = header.nodata if header.nodata is not None else 0
    if header.nodata is not None:  # CF: xarray masks it (Zarr's fill value alone is not a nodata)
        attrs["_FillValue"] = header.nodata
    with warnings.catch_warnings():  # zlib is numcodecs', not the Zarr 3 spec's: TIFF DEFLATE is a zlib stream
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")
        data = group.create_array(band, shape=(header.height, header.width),
                                  chunks=(header.tile_height, header.tile_width), dtype=header.dtype, filters=filters,
                                  compressors=compressors, fill_value=fill, dimension_names=("y", "x"),
                                  serializer=zarr.codecs.BytesCodec(endian="little" if header.byte_order == "<" else "big"),
                                  attributes=attrs)
    across = math.ceil(header.width / header.tile_width)
    chunks = 0
    for index, (offset, length) in enumerate(zip(header.tile_offsets, header.tile_byte_counts)):
        if int(length) == 0:
            continue  # a sparse tile: the fill value, as GDAL reads it
        row, col = divmod(index, across)
        store.set_virtual_ref(f"{data.path}/c/{row}/{col}", header.url, offset=int(offset), length=int(length))
        chunks += 1
    a, b, c, d, e, f = header.transform
    xs = c + (np.arange(header.width) + 0.5) * a
    ys = f + (np.arange(header.height) + 0.5) * e
    group.create_array("x", data=xs, dimension_names=("x",), attributes={"standard_name": "projection_x_coordinate"})
    group.create_array("y", data=ys, dimension_names=("y",), attributes={"standard_name": "projection_y_coordinate"})
    crs = _crs_wkt(header)
    group.create_array("spatial_ref", shape=(), dtype="int32", fill_value=0, attributes={
        "crs_wkt": crs, "spatial_ref": crs, "GeoTransform": " ".join(str(v) for v in (c, a, b, f, d, e))})
    return chunks


def _check_codec(header: CogHeader) -> None:
    if header.compression not in _CODECS:
        raise UnsupportedCodecError(header.url, f"TIFF compression {header.compression} has no Zarr codec here"
                                                " (uncompressed, DEFLATE and ZSTD tiles can be referenced)")
    if header.predictor not in (1, 2) or (header.predictor == 2 and header.dtype.kind not in "iu"):
        raise UnsupportedCodecError(header.url, f"TIFF predictor {header.predictor} on {header.dtype} has no Zarr codec"
                                                " here (horizontal differencing of integers has one)")
    if header.samples_per_pixel != 1 or not header.is_tiled:
        raise UnsupportedCodecError(header.url, "only tiled single-band COGs can be referenced as Zarr chunks")
    if not header.url.startswith("s3://"):
        raise UnsupportedCodecError(header.url, "only s3:// tiles can be referenced from the Icechunk repository")


def _bucket_prefix(url: str) -> str:
    return "s3://" + url[len("s3://"):].split("/", 1)[0] + "/"


def _config(icechunk: Any, prefixes: set[str], endpoint: str | None, region: str | None) -> Any:
    config = icechunk.RepositoryConfig.default()
    for prefix in sorted(prefixes):
        store = icechunk.s3_store(region=region or "us-west-2", endpoint_url=endpoint,
                                  allow_http=bool(endpoint and endpoint.startswith("http://")),
                                  s3_compatible=bool(endpoint), force_path_style=bool(endpoint))
        config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, store))
    return config


def _credentials(icechunk: Any, prefixes: Any, anonymous: bool = True) -> Any:
    make = icechunk.s3_anonymous_credentials if anonymous else icechunk.s3_from_env_credentials
    return icechunk.containers_credentials({prefix: make() for prefix in prefixes})


def _crs_wkt(header: CogHeader) -> str:
    if header.crs_wkt:
        return header.crs_wkt
    return CRS.from_epsg(header.crs_epsg).to_wkt() if header.crs_epsg else ""


def _modules() -> tuple[Any, Any]:
    try:
        import icechunk  # optional: pip install rasteret[virtual]
        import zarr

        import rasteret_core.collection.zarr_codecs  # noqa: F401 - registers the TIFF predictor codec
    except ImportError as exc:
        raise ArgumentError(f"virtual Zarr needs icechunk and zarr 3 (pip install 'rasteret[virtual]'): {exc}") from None
    if "ICECHUNK_LOG" not in os.environ:
        # Icechunk's log goes to stdout, where it would mix with a program's output (the CLI's
        # --json); its one warning here (a local repository is not for concurrent commits) is
        # in to_virtual_zarr's documentation
        icechunk.set_logs_filter("error")
    return icechunk, zarr
