"""The README's TorchGeo block runs as written after the quick start, on the demo scenes
(Python 3.12 with torch and TorchGeo: `make test-torchgeo`)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torchgeo")

from tests.docs.test_readme import README  # noqa: E402
from tests.helpers.demo import after_quick_start  # noqa: E402


def test_the_torchgeo_block_runs_after_the_quick_start(tmp_path):
    text = README.read_text()
    section = text[text.index("### Tables in and out"):text.index("## Pipelines (Dagster)")]
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "torchgeo" in b]
    with after_quick_start(tmp_path, block, timeout=600) as (done, _server):
        assert done.stdout.strip().splitlines()[-1] == "torch.Size([4, 2, 128, 128])"
