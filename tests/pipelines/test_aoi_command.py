"""AOIs without Python: `python -m rasteret_pipelines.aois sync` registers the AOI file's
partitions in the instance of DAGSTER_HOME, after which the README's headless command works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _field(name: str, x: float) -> dict:
    ring = [[x, 13.0], [x + 0.01, 13.0], [x + 0.01, 13.01], [x, 13.01], [x, 13.0]]
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_sync_registers_the_file_then_a_headless_materialize_works(tmp_path, demo_scenes, scene_server):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    aois = tmp_path / "fields.geojson"
    aois.write_text(json.dumps({"type": "FeatureCollection", "features": [_field("north_field", 77.6)]}))
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": demo_scenes.items}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_", "AWS_"))}
    env.update(DAGSTER_HOME=str(home), RASTERET_AOIS=str(aois), RASTERET_STAC_SOURCE=str(items),
               RASTERET_STORAGE=str(tmp_path / "storage"), AWS_ENDPOINT_URL=scene_server.endpoint_url,
               RASTERET_START_DATE="2024-01-01")

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    done = run(sys.executable, "-m", "rasteret_pipelines.aois", "sync")  # as a user runs it
    assert done.returncode == 0 and "added 1 (north_field)" in done.stdout, done.stderr[-2000:]
    collection = run(str(BIN / "dagster"), "asset", "materialize", "-m", "rasteret_pipelines.definitions",
                     "--select", "scene_collection", "--partition", "2024-01-05")
    assert collection.returncode == 0, collection.stderr[-2000:]
    ndvi = run(str(BIN / "dagster"), "asset", "materialize", "-m", "rasteret_pipelines.definitions",
               "--select", "ndvi", "--partition", "north_field|2024-01-05")
    assert ndvi.returncode == 0, ndvi.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_dynamic_partitions("aois") == ["north_field"]
        assert "north_field|2024-01-05" in instance.get_materialized_partitions(dg.AssetKey("ndvi"))


def test_dry_run_changes_nothing_and_a_broken_file_is_one_line(tmp_path, monkeypatch, capsys):
    from rasteret_pipelines.aois import main

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    aois = tmp_path / "fields.geojson"
    aois.write_text(json.dumps({"type": "FeatureCollection", "features": [_field("north_field", 77.6)]}))
    assert main(["sync", "--aois", str(aois), "--dry-run"]) == 0
    assert "would add 1 (north_field)" in capsys.readouterr().out
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("aois") == []  # nothing changed
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json")
    assert main(["sync", "--aois", str(broken)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and str(broken) in err
