"""The shipped instance configurations load: the local one for real, the team one by schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]


def test_local_instance_uses_sqlite_queue_and_pools(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.get()
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert "Sqlite" in type(instance.run_storage).__name__
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
        assert instance.get_settings("telemetry") == {"enabled": False}
        # a killed run cannot hold its pool slot for ever
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds > 0
        assert instance.run_monitoring_settings.get("free_slots_after_run_end_seconds", 0) > 0
    finally:
        instance.dispose()


def test_team_instance_config_validates_postgres_and_k8s(tmp_path, monkeypatch):
    pytest.importorskip("dagster_postgres")
    pytest.importorskip("dagster_k8s")
    from dagster._core.instance.config import dagster_instance_config
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import PostgresRunStorage

    shutil.copy(ROOT / "deploy" / "dagster.team.yaml", tmp_path / "dagster.yaml")
    for var in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB", "DAGSTER_PG_PORT"):
        monkeypatch.setenv(var, "5432" if var.endswith("PORT") else "placeholder")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    raw = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    launcher = process_config(K8sRunLauncher.config_type(), raw["run_launcher"]["config"])
    assert launcher.success, [e.message for e in launcher.errors]
    storage = process_config(PostgresRunStorage.config_type(), raw["storage"]["postgres"])
    assert storage.success, [e.message for e in storage.errors]
