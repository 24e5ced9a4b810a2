"""The README's `load` example runs as written after the quick start, offline on the demo scenes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, prepare_data
from tests.docs.test_readme import README, quick_start


def test_the_load_example_runs_after_the_quick_start(tmp_path):
    code, offline = quick_start()
    online = re.search(r"^source = DataSources\.SENTINEL2.*$", code, re.M).group(0)
    text = README.read_text()
    section = text[text.index("### Lazy datacubes on one grid"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "load_example.py").write_text(code.replace(online, offline) + "\n" + example)
    prepare_data(tmp_path / ".rasteret_demo")
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, "load_example.py"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        header_reads = [r for r in server.stats.log if r.range and r.range.startswith("bytes=0-")]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dask.array" in done.stdout and "32643 Shape2d" in done.stdout, done.stdout
    fetched = re.search(r"ReadStats\(requests=(\d+), header_requests=(\d+)", done.stdout)
    assert fetched and int(fetched.group(1)) > 0 and fetched.group(2) == "0"  # last_stats counts the compute
    means = re.findall(r"\[([^\]]*)\]", done.stdout.split("dask.array")[-1])
    assert means and any(re.search(r"0\.\d", m) for m in means)  # NDVI means of vegetation
    # building the collection read each header once; the reads and loads after it added none
    assert header_reads and len(header_reads) == len({r.path for r in header_reads})
