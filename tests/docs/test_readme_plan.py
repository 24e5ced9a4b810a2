"""The README's "What a read will cost" block runs as written after the quick start, with its AOIs,
and the plan it prints equals what the read then reports."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, prepare_data
from tests.docs.test_readme import README, quick_start


def test_the_plan_block_runs_after_the_quick_start(tmp_path):
    code, offline = quick_start()
    code = re.sub(r"^source = DataSources\.SENTINEL2.*$", offline, code, flags=re.M)
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index("### What a read will cost"):], re.S).group(1)
    prepare_data(tmp_path / ".rasteret_demo")
    (tmp_path / "plan.py").write_text(code + "\n" + block)
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, "plan.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    compared = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert compared["requests"][0] == compared["requests"][1] > 0  # planned == read
