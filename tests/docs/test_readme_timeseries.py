"""The README's time-series block runs as written, from the folder where ``make demo`` leaves
the statistics, and writes the chart it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.ndvi.test_timeseries_chart import DAYS, write_days

README = Path(__file__).resolve().parents[2] / "README.md"


def timeseries_block() -> str:
    text = README.read_text()
    section = text[text.index("### The NDVI time series per field"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_time_series_block_runs_as_written(tmp_path):
    write_days(tmp_path / ".rasteret_demo" / "storage" / "ndvi_stats")  # what `make demo` writes there
    (tmp_path / "block.py").write_text(timeseries_block())
    done = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["aoi", "date", "median", "p10", "p90", "valid_fraction"]
    assert len(lines) == 1 + len(DAYS) and "2024-01-10" in done.stdout
    with Image.open(tmp_path / "ndvi_timeseries.png") as chart:
        assert chart.size[0] >= 800
