"""Locating the shared real-world fixtures at collection time (for parametrize)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR = Path(os.environ.get("RASTERET_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))
FIXTURES = SHARED_DIR / "fixtures"


def fixture_tiffs() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))


def fixture_id(path: Path) -> str:
    return "/".join(path.relative_to(FIXTURES).parts[:1] + (path.name,))
