"""A collection as a virtual Zarr store (Icechunk) over the local object store: xarray.open_zarr
gives rasterio's values for every band of the fixture scenes, with tile requests only; codecs
the Zarr side cannot decode are refused by name at export."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
import xarray as xr

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection import Collection
from rasteret_core.collection.virtual_zarr import open_virtual_zarr, to_virtual_zarr
from rasteret_core.errors import UnsupportedCodecError
from rasteret_core.stac.sources import DataSources
from tests.load.conftest import BANDS, harvested_collection, real_items, S2_DIR, tile_spans

pytest.importorskip("icechunk")


@pytest.fixture(scope="module")
def collection(object_store, tmp_path_factory) -> Collection:
    return harvested_collection(tmp_path_factory.mktemp("vz") / "c", real_items(), BANDS,
                                ReaderOptions(endpoint_url=object_store.endpoint_url), "vz")


def test_open_zarr_gives_rasterio_values_for_every_band_with_tile_requests_only(collection, store, tmp_path):
    report = to_virtual_zarr(collection, tmp_path / "repo", endpoint_url=store.endpoint_url)
    assert len(report.groups) == 2 * len(BANDS) and not report.skipped
    assert store.stats.requests == 0  # the export reads nothing: the stored headers say it all
    zarr_store = open_virtual_zarr(tmp_path / "repo", endpoint_url=store.endpoint_url)
    for group in report.groups:
        day, scene_id, band = group.split("/")
        ds = xr.open_zarr(zarr_store, group=group, consolidated=False, zarr_format=3, mask_and_scale=False)
        with rasterio.open(S2_DIR / f"{band}.tif") as src:
            truth, transform = src.read(1), src.transform
        np.testing.assert_array_equal(ds[band].values, truth)
        assert ds.x.values[0] == pytest.approx(transform.c + transform.a / 2)  # pixel centres, as rioxarray
        assert "PROJCS" in ds.spatial_ref.attrs["crs_wkt"] or "PROJCRS" in ds.spatial_ref.attrs["crs_wkt"]
        scene = next(s for s in collection.scenes() if s.id == scene_id)
        if scene.bands[band].scale is not None:  # the stored radiometry rule, as CF attributes
            decoded = xr.open_zarr(zarr_store, group=group, consolidated=False, zarr_format=3)[band].values
            scale, offset = scene.bands[band].scale, scene.bands[band].offset or 0.0
            valid = truth != 0
            np.testing.assert_allclose(decoded[valid], truth[valid] * scale + offset, rtol=1e-6)
    records = store.requests_for("*.tif")
    # Icechunk may split a tile's range into parts: each request lies inside one stored tile, never a header byte
    assert records and [r.range for r in records if not _inside_a_tile(r.range, tile_spans(collection))] == []


def _inside_a_tile(header: str | None, spans: set[tuple[int, int]]) -> bool:
    if not header:
        return False
    first, last = (int(v) for v in header.split("=", 1)[1].split("-"))
    return any(start <= first and last < end for start, end in spans)


def test_a_codec_zarr_cannot_decode_is_refused_by_name(collection, tmp_path):
    scenes = collection.scenes()
    lzw = [dataclasses.replace(s, bands={b: dataclasses.replace(a, header=dataclasses.replace(a.header, compression=5))
                                         for b, a in s.bands.items()}) for s in scenes]
    other = Collection.create(tmp_path / "lzw", name="lzw", data_source=DataSources.SENTINEL2, bands=BANDS)
    for scene in lzw:
        other.write_date(scene.datetime.date(), [scene])
    with pytest.raises(UnsupportedCodecError, match="compression 5 has no Zarr codec"):
        to_virtual_zarr(other, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()  # nothing half-written
