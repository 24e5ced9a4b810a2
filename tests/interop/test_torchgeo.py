"""A collection as a TorchGeo dataset: TorchGeo's grid sampler and two DataLoader worker
processes draw chips whose pixels equal rasterio's reads of the same windows, with tile
requests only. Runs where torch and TorchGeo are installed (Python 3.12, `make test-torchgeo`)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds

torch = pytest.importorskip("torch")
torchgeo = pytest.importorskip("torchgeo")

from torch.utils.data import DataLoader  # noqa: E402
from torchgeo.datasets import stack_samples  # noqa: E402
from torchgeo.samplers import GridGeoSampler  # noqa: E402

from rasteret_core.cog import ReaderOptions  # noqa: E402
from rasteret_core.collection import Collection  # noqa: E402
from rasteret_core.interop.torchgeo import RasteretDataset  # noqa: E402
from tests.load.conftest import harvested_collection, real_items, S2_DIR  # noqa: E402

BANDS = ["B04", "B08"]


@pytest.fixture(scope="module")
def collection(object_store, tmp_path_factory) -> Collection:
    return harvested_collection(tmp_path_factory.mktemp("tg") / "c", real_items()[:1], BANDS,
                                ReaderOptions(endpoint_url=object_store.endpoint_url), "tg")


def test_grid_sampled_chips_from_two_workers_equal_rasterio_window_reads(collection, store):
    dataset = RasteretDataset(collection, BANDS, reader_options=ReaderOptions(endpoint_url=store.endpoint_url))
    sampler = GridGeoSampler(dataset, size=256, stride=256)
    loader = DataLoader(dataset, sampler=sampler, batch_size=4, num_workers=2, collate_fn=stack_samples)
    chips = 0
    with rasterio.open(S2_DIR / "B04.tif") as b04, rasterio.open(S2_DIR / "B08.tif") as b08:
        for batch in loader:
            for image, bounds in zip(batch["image"], batch["bounds"]):
                xmin, xmax, _, ymin, ymax = (float(v) for v in bounds[:5])
                window = from_bounds(xmin, ymin, xmax, ymax, b04.transform).round_offsets().round_lengths()
                truth = np.stack([src.read(1, window=window, boundless=True, fill_value=0) for src in (b04, b08)])
                assert image.shape == truth.shape
                np.testing.assert_array_equal(image.numpy(), truth.astype(np.float32))
                chips += 1
    assert chips == len(sampler) > 1
    assert all(r.range for r in store.requests_for("*.tif"))  # ranged tile reads, never a whole file
