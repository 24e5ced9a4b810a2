"""The README's "What a read will cost" block runs as written after the quick start, with its AOIs,
and the plan it prints equals what the read then reports."""

from __future__ import annotations

import ast
import re

from tests.docs.test_readme import README
from tests.helpers.demo import after_quick_start


def test_the_plan_block_runs_after_the_quick_start(tmp_path):
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index("### What a read will cost"):], re.S).group(1)
    with after_quick_start(tmp_path, block) as (done, _server):
        compared = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert compared["requests"][0] == compared["requests"][1] > 0  # planned == read
