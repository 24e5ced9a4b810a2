"""Load: a backfill of many date x AOI partitions against the latency-modelled object store
keeps memory flat (it does not grow with the partitions done) and never opens more
connections than the reader's concurrency limit."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from rasteret_core.testing.object_store import ObjectStoreServer
from rasteret_pipelines.settings import aoi_file, aoi_names
from tests.helpers.children import with_own_peak_rss
from tests.pipelines.conftest import BUCKET, write_items

CHILD = Path(__file__).with_name("_backfill_child.py")
DATES = [f"2024-02-{d:02d}" for d in range(1, 7)]
MAX_CONCURRENCY = 4
RSS_GROWTH_BOUND_MIB = 80


def test_backfill_memory_and_connections_stay_bounded(demo_scenes, tmp_path, record_property):
    items = []
    for i, day in enumerate(DATES):  # six dates over the three scenes. files
        item = copy.deepcopy(demo_scenes.items[i % len(demo_scenes.items)])
        when = dt.datetime.fromisoformat(day).replace(hour=5, minute=12, tzinfo=dt.timezone.utc)
        item["id"] = f"S2A_43PGQ_{when:%Y%m%d}_0_L2A"
        item["properties"]["datetime"] = when.isoformat().replace("+00:00", "Z")
        items.append(item)
    aois = list(aoi_names(aoi_file()))
    with ObjectStoreServer(buckets={BUCKET: demo_scenes.folder}, latency=(0.02, 0.08)) as server:
        args = {"items": str(write_items(tmp_path / "items.json", items)), "endpoint": server.endpoint_url,
                "storage": str(tmp_path / "storage"), "dates": DATES, "aois": aois, "max_concurrency": MAX_CONCURRENCY}
        done = subprocess.run(with_own_peak_rss([sys.executable, str(CHILD), json.dumps(args)]), capture_output=True,
                              text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
        server.wait_idle()
        peak_connections = server.stats.peak_connections
        requests = server.stats.requests
    assert done.returncode == 0, done.stderr[-3000:]
    progress = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    partitions = len(DATES) * len(aois)
    assert progress[-1]["done"] == partitions
    after_first_third = progress[partitions // 3 - 1]["rss_mib"]
    peak = progress[-1]["rss_mib"]
    assert peak - after_first_third < RSS_GROWTH_BOUND_MIB, progress
    assert 0 < peak_connections <= MAX_CONCURRENCY

    from rasteret_core.products.timeseries import read_stats

    table = read_stats(tmp_path / "storage" / "ndvi_stats")
    assert len(table) == partitions and set(table.date.dt.strftime("%Y-%m-%d")) == set(DATES)
    record_property("reliability.backfill_partitions", partitions)
    record_property("reliability.backfill_requests", requests)
    record_property("reliability.peak_rss_mib_backfill", peak)
    record_property("reliability.peak_rss_growth_mib_backfill", round(peak - after_first_third, 1))
    record_property("reliability.peak_open_connections_backfill", peak_connections)
