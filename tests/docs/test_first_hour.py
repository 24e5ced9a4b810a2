"""The README's first-hour claims, each run the way a new user runs it: the COG quick start on the
demo scenes, the command-line block, the make targets' installs, the UI without warnings on the
demo's own partitions, a busy port in one line, the schedules to turn on, one endpoint variable."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.demo import served_demo, user_env
from tests.helpers.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    ends = [i for i in (README.find("\n## ", start + 1), README.find("\n### ", start + 1)) if i > 0]
    return README[start: min(ends) if ends else None]


def block(title: str, lang: str) -> str:
    return re.search(rf"```{lang}\n(.*?)```", section(title), re.S).group(1)


@pytest.fixture(scope="module")
def demo_bucket(tmp_path_factory):
    root = tmp_path_factory.mktemp("first_hour")
    with served_demo(root) as (items, endpoint):
        yield root, items, endpoint


def test_the_cog_quick_start_runs_as_written_on_the_demo(demo_bucket, tmp_path):
    _, _, endpoint = demo_bucket
    (tmp_path / "cog.py").write_text(block("### The COG engine", "python"))
    done = subprocess.run([sys.executable, "cog.py"], cwd=tmp_path, env=user_env(AWS_ENDPOINT_URL=endpoint),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["2048 512 32643 1", "(1, 512, 512) uint16"]  # the README's demo figures
    assert "2048 512 32643 1" in section("### The COG engine")
    assert "event loop" not in done.stderr


def test_a_failing_cog_read_has_no_unrelated_event_loop_error(tmp_path):
    script = ("from rasteret_core.cog import read_header\n"
              f"read_header({str(tmp_path / 'missing.tif')!r})\n")
    done = subprocess.run([sys.executable, "-c", script], env=user_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "missing.tif" in done.stderr
    assert "no running event loop" not in done.stderr and "During handling" not in done.stderr


def test_the_command_line_block_runs_on_the_demo(demo_bucket, tmp_path):
    _, items, endpoint = demo_bucket
    shutil.copy(items, tmp_path / "sentinel.json")  # an items file named like the source: same collection name
    farms = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "farm_a"},
         "geometry": {"type": "Polygon", "coordinates": [[[77.55, 13.03], [77.57, 13.03], [77.57, 13.05], [77.55, 13.05], [77.55, 13.03]]]}},
    ]}
    (tmp_path / "farms.geojson").write_text(json.dumps(farms))
    env = user_env(AWS_ENDPOINT_URL=endpoint, RASTERET_WORKSPACE=str(tmp_path / "ws"))
    commands = [c for c in block("### Command line", "bash").replace("\\\n", " ").splitlines() if c.strip()]
    assert [c.split()[1] for c in commands] == ["build", "collections", "info", "read"]
    for line in commands:
        args = line.split("#")[0].split()[1:]
        if args[0] == "build":
            args += ["--source", "sentinel.json"]
        done = subprocess.run([sys.executable, "-m", "rasteret_core.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (line, done.stdout[-1500:], done.stderr[-1500:])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif"))[:2] == ["B04_farm_a_20240105.tif",
                                                                          "B04_farm_a_20240115.tif"]


def test_make_demo_installs_only_the_project_and_make_test_the_test_extras(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)

    def dry(target: str) -> str:
        done = subprocess.run(["make", "-n", target, "PYTHON=python3"], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    demo = dry("demo")
    assert "pip install -e ." in demo and "[" not in demo.split("pip install -e .")[1].split("\n")[0]
    assert "[dev]" not in demo and "[test]" not in demo
    assert "pip install -e '.[dev]'" in dry("test")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["dev"] == ["rasteret[test]"] and any(d.startswith("pytest") for d in extras["test"])
    ui = subprocess.run(["make", "-n", "ui", "PORT=3001", "PYTHON=python3"], cwd=tmp_path, capture_output=True, text=True)
    assert "demo ui --port 3001" in ui.stdout


def test_a_busy_port_is_one_line_with_the_option_to_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "rasteret_pipelines.demo", "serve", "--port", str(port)],
                              env=user_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"port {port} on 127.0.0.1 is in use (an earlier `make serve-demo` still running?);"
                                   f" choose another: make serve-demo PORT={port + 1}")


def test_the_readme_names_the_schedules_to_turn_on():
    from rasteret_pipelines.definitions import defs

    text = section("## Pipelines (Dagster)")
    for schedule in defs.schedules:
        assert f"`{schedule.name}`" in text and schedule.default_status.value == "STOPPED"
    assert "start **stopped**" in text


def test_one_endpoint_variable_for_library_and_pipelines(monkeypatch):
    from rasteret_pipelines import settings

    monkeypatch.delenv("RASTERET_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert settings.s3_endpoint() == "http://127.0.0.1:9000"
    monkeypatch.setenv("RASTERET_S3_ENDPOINT", "http://127.0.0.1:9001")  # the earlier name still works, and wins
    assert settings.s3_endpoint() == "http://127.0.0.1:9001"


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def test_make_ui_starts_without_warnings_on_the_demo_partitions(tmp_path):
    port = free_port()
    env = user_env(RASTERET_DEMO_DIR=str(tmp_path / "demo"), VIRTUAL_ENV=str(Path(sys.executable).parent.parent))
    log = open(tmp_path / "ui.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "rasteret_pipelines.demo", "ui", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI did not answer"
                time.sleep(0.5)  # polling for readiness, not timing a result
        node = _graphql(port, '{ assetNodeOrError(assetKey: {path: ["ndvi"]}) { ... on AssetNode { '
                              "partitionKeysByDimension { name partitionKeys } } } }")["assetNodeOrError"]
        dims = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        assert dims["date"][0] == "2024-01-05" and dims["date"][-1] == "2024-01-15" and len(dims["date"]) == 11
        # what the UI logged while starting and serving; the shutdown below can race Dagster's own
        # code-server supervisor ("exited with code 0. Restarting"), which is not the start's
        started = (tmp_path / "ui.log").read_text()
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # the demo stops its dg dev process group
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Serving dagster-webserver" in started
    assert "Warning" not in started and "WARNING" not in started and "superseded" not in started, started[-3000:]
