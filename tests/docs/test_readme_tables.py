"""The README's "Tables in and out" block runs as written after the quick start, on the demo scenes."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr

from rasteret_core.collection.virtual_zarr import open_virtual_zarr
from tests.docs.test_readme import README
from tests.helpers.demo import after_quick_start


def test_the_tables_block_runs_after_the_quick_start(tmp_path):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text[text.index("### Tables in and out"):
                                                        text.index("## Pipelines (Dagster)")], re.S)
    # the TorchGeo block needs Python 3.12 and torch: tests/interop/test_readme_torchgeo.py runs it
    tables = "\n".join(b for b in blocks if "torchgeo" not in b)
    with after_quick_start(tmp_path, tables) as (done, _server):
        exported = pq.read_table(tmp_path / "items.parquet")
        ours = [line for line in done.stdout.splitlines() if line and not line.startswith(" ")]
        stored, copied, virtual = ours[-3:]
        assert stored.split()[0] == str(exported.num_rows) == copied  # every item out, and back in
        # the virtual store's band equals rasterio's read of the same COG (DEFLATE + predictor 2 here)
        group, mean = virtual.split()[0], float(virtual.split()[-1])
        store = open_virtual_zarr(tmp_path / "bangalore.icechunk")
        raw = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False).B04
        with rasterio.open(next((tmp_path / ".rasteret_demo" / "bucket").rglob(f"{group.split('/')[1]}/B04.tif"))) as src:
            truth = src.read(1)
        np.testing.assert_array_equal(raw.values, truth)
        scale, offset = raw.attrs["scale_factor"], raw.attrs["add_offset"]  # the stored radiometry rule, as CF
        assert mean == pytest.approx(float(np.mean(truth[truth != 0] * scale + offset)), rel=1e-5)
