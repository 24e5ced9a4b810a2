"""The embedded demo as a user's child process meets it: its scenes served by a local
S3-compatible server, and an environment free of the caller's AWS, rasteret and Dagster
settings."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.demo import BUCKET, prepare_data

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
