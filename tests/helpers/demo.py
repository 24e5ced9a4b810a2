"""The embedded demo as a user's child process meets it: its scenes served by a local
S3-compatible server, and an environment free of the caller's AWS, rasteret and Dagster
settings."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, prepare_data
from tests.docs.test_readme import quick_start

ROOT = Path(__file__).resolve().parents[2]


def user_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``AWS_*``, ``RASTERET_*`` and ``DAGSTER_*`` variables,
    with the checkout importable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_", "DAGSTER_"))}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


@contextlib.contextmanager
def served_demo(root: Path) -> Iterator[tuple[list, str]]:
    """Generate the demo scenes under ``root / "demo"`` and serve their bucket; yields the demo's
    items and the server's endpoint URL."""
    items = prepare_data(root / "demo")
    with ObjectStoreServer(buckets={BUCKET: root / "demo" / "bucket"}) as server:
        yield items, server.endpoint_url


@contextlib.contextmanager
def after_quick_start(tmp_path: Path, code: str, name: str = "example.py", timeout: float = 300) -> Iterator[tuple]:
    """Run the README's quick start (offline: the demo's items file as the source) followed by
    ``code`` as one script in a child process, on the demo scenes served locally. Yields the
    finished process and the server, still serving (to read what the script wrote)."""
    start, offline = quick_start()
    start = re.sub(r"^source = DataSources\.SENTINEL2.*$", offline, start, flags=re.M)
    prepare_data(tmp_path / ".rasteret_demo")
    (tmp_path / name).write_text(start + "\n" + code)
    with ObjectStoreServer(buckets={BUCKET: tmp_path / ".rasteret_demo" / "bucket"}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERET_"))}
        env.update(AWS_ENDPOINT_URL=server.endpoint_url, RASTERET_WORKSPACE=str(tmp_path / "workspace"))
        done = subprocess.run([sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        yield done, server
