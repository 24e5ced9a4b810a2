"""The main job (``make demo``). Placeholder until the pipeline lands: reads the shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

from rasteret_core.cog import ReadStats, read_header, read_window


def main() -> int:
    shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
    tiffs = sorted(p for p in shared.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))
    for path in tiffs:
        stats = ReadStats()
        header = read_header(path, stats=stats)
        pixels = read_window(header, None, stats=stats)
        print(f"{path.name}: {header.width}x{header.height} {header.dtype}, {stats.requests} reads, mean {pixels.mean():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
