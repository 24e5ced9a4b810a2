"""The README's "Tables in and out" block runs as written after the quick start, on the demo scenes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pyarrow.parquet as pq

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, prepare_data
from tests.docs.test_readme import README, quick_start


def test_the_tables_block_runs_after_the_quick_start(tmp_path):
    code, offline = quick_start()
    code = re.sub(r"^source = DataSources\.SENTINEL2.*$", offline, code, flags=re.M)
    text = README.read_text()
    tables = re.search(r"```python\n(.*?)```", text[text.index("### Tables in and out"):], re.S).group(1)
    prepare_data(tmp_path / ".rasteret_demo")
    (tmp_path / "tables.py").write_text(code + "\n" + tables)
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, "tables.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    exported = pq.read_table(tmp_path / "items.parquet")
    stored, copied = done.stdout.strip().splitlines()[-2:]
    assert stored.split()[0] == str(exported.num_rows) == copied  # every item out, and back in
