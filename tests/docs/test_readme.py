"""The README's library quick start runs as written, offline, on the demo scenes (with the
one-line source swap the README describes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import rasterio

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, DATES, prepare_data

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> tuple[str, str]:
    text = README.read_text()
    section = text[text.index("### Collections and AOI time series"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    offline = re.search(r"`(source = DataSource\.from_items_file\(.*?\))`", section).group(1)
    return code, offline


def test_the_quick_start_runs_as_written_on_the_demo_scenes(tmp_path):
    code, offline = quick_start()
    online = re.search(r"^source = DataSources\.SENTINEL2.*$", code, re.M)
    assert online, "the quick start no longer starts from the Sentinel-2 source"
    script = code.replace(online.group(0), offline)
    prepare_data(tmp_path / ".rasteret_demo")
    (tmp_path / "quick_start.py").write_text(script)
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, "quick_start.py"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "header_requests=0" in done.stdout and "0 asset headers failed" in done.stdout
    outputs = sorted((tmp_path / "ndvi_out").glob("*.tif"))
    clear_days = [day for day, cover in DATES if cover < 20]  # the quick start asks cloud_cover_lt=20
    assert [p.name for p in outputs] == [f"{aoi}_202401{day:02d}.tif" for aoi in ("farm_a", "farm_b") for day in clear_days]
    with rasterio.open(outputs[0]) as src:
        assert src.crs.to_epsg() == 32643 and src.dtypes[0] == "float32"
