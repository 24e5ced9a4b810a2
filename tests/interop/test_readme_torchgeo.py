"""The README's TorchGeo block runs as written after the quick start, on the demo scenes
(Python 3.12 with torch and TorchGeo: `make test-torchgeo`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torchgeo")

from rasteret_core.testing.object_store import ObjectStoreServer  # noqa: E402
from rasteret_pipelines.demo import BUCKET, prepare_data  # noqa: E402
from tests.docs.test_readme import README, quick_start  # noqa: E402


def test_the_torchgeo_block_runs_after_the_quick_start(tmp_path):
    code, offline = quick_start()
    code = re.sub(r"^source = DataSources\.SENTINEL2.*$", offline, code, flags=re.M)
    text = README.read_text()
    section = text[text.index("### Tables in and out"):text.index("## Pipelines (Dagster)")]
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "torchgeo" in b]
    prepare_data(tmp_path / ".rasteret_demo")
    (tmp_path / "chips.py").write_text(code + "\n" + block)
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, "chips.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "torch.Size([4, 2, 128, 128])"
