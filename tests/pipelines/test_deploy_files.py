"""What a real deployment needs beside the instance file, checked offline: the image's entry
point serves the definitions, the Helm values' run launcher validates against dagster-k8s's
config schema and matches the team instance, and the environment both read is complete."""

from __future__ import annotations

import json
import os
import signal
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def dockerfile_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    return entry + cmd


def values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def env_config_map() -> dict[str, str]:
    return yaml.safe_load((DEPLOY / "rasteret-pipeline-env.yaml").read_text())["data"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def chart_launcher_to_instance(config: dict, chart: dict) -> dict:
    """The chart's camelCase k8sRunLauncher values as the K8sRunLauncher config they render
    to, with what the chart fills in itself (its instance ConfigMap, home, service account)."""
    out: dict = {"instance_config_map": "rasteret-dagster-instance", "dagster_home": "/opt/dagster/dagster_home",
                 "service_account_name": chart["global"]["serviceAccountName"]}
    for key, value in config.items():
        if key in ("envConfigMaps", "envSecrets"):
            value = [v["name"] for v in value]
        elif key == "runK8sConfig":
            value = {_snake(k): v for k, v in value.items()}
        out[_snake(key)] = value
    return out


def test_image_entry_point_serves_the_definitions(tmp_path):
    argv = dockerfile_command()
    assert argv[:3] == ["dagster", "api", "grpc"]
    deployment = values()["dagster-user-deployments"]["deployments"][0]
    assert argv[-2:] == deployment["dagsterApiGrpcArgs"]  # the chart serves the same module
    port = free_port()
    argv = [str(BIN / "dagster"), *argv[1:]]
    argv[argv.index("-p") + 1], argv[argv.index("-h") + 1] = str(port), "127.0.0.1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(tmp_path), DAGSTER_DISABLE_TELEMETRY="1", RASTERET_STORAGE=str(tmp_path / "storage"))
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        for _ in range(120):  # polls the server's health until it serves (loading takes seconds)
            if server.poll() is not None:
                pytest.fail(f"the entry point exited: {server.stderr.read()[-3000:]}")
            check = subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                                   env=env, capture_output=True, text=True, timeout=60)
            if check.returncode == 0:
                break
        else:
            pytest.fail("the code server never became healthy")
        listed = subprocess.run([str(BIN / "dagster"), "job", "list", "--grpc-port", str(port), "--grpc-host", "127.0.0.1"],
                                env=env, capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert {"collection_job", "ndvi_job"} <= set(re.findall(r"\w+", listed.stdout)), listed.stdout
    finally:  # the whole process group: the code server's own children too, even if it ignores SIGTERM
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)


def test_helm_run_launcher_validates_and_matches_the_team_instance():
    pytest.importorskip("dagster_k8s")
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    chart = values()
    assert chart["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = chart_launcher_to_instance(chart["runLauncher"]["config"]["k8sRunLauncher"], chart)
    checked = process_config(K8sRunLauncher.config_type(), launcher)
    assert checked.success, [e.message for e in checked.errors]

    team = yaml.safe_load((DEPLOY / "dagster.team.yaml").read_text())
    same = team["run_launcher"]["config"]
    for key in ("job_namespace", "env_config_maps", "env_secrets", "run_k8s_config", "service_account_name"):
        assert launcher[key] == same[key], key
    pg = chart["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlScheme"] == team["storage"]["postgres"]["postgres_db"]["scheme"]
    assert chart["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] \
        == team["concurrency"]["runs"]["max_concurrent_runs"]


def test_the_environment_covers_what_settings_and_the_instance_read():
    data = env_config_map()
    documented = set(re.findall(r"``(RASTERET_[A-Z_0-9]+)``", (ROOT / "rasteret_pipelines" / "settings.py").read_text()))
    assert {k for k in data if k.startswith("RASTERET_")} == documented
    team = (DEPLOY / "dagster.team.yaml").read_text()
    needed = set(re.findall(r"env: (DAGSTER_PG_[A-Z_]+)", team)) - {"DAGSTER_PG_PASSWORD"}  # a secret
    assert needed <= set(data), needed - set(data)
    assert all("PASSWORD" not in k and "SECRET" not in k for k in data)  # no secret in a ConfigMap
