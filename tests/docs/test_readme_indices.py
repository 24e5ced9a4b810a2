"""The README's "Other indices by name" block runs as written after the quick start: SAVI per AOI
and date from the catalogue, its table and its chart."""

from __future__ import annotations

import re

from tests.docs.test_readme import README
from tests.helpers.demo import after_quick_start


def test_the_indices_block_runs_after_the_quick_start(tmp_path):
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index("### Other indices by name"):], re.S).group(1)
    with after_quick_start(tmp_path, block) as (done, _server):
        lines = done.stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["aoi", "date", "median", "valid_fraction"])
    rows = [line.split() for line in lines[header + 1:]]
    assert {r[0] for r in rows} == {"farm_a", "farm_b"} and all(r[1].startswith("2024-01") for r in rows)
    assert any(0.0 < float(r[2]) < 1.5 for r in rows if r[2] != "NaN")
    assert (tmp_path / "savi.png").stat().st_size > 10_000
