"""The ways people run the project: `dg check defs`, the `dagster` CLI, the webserver on
workspace.yaml (its GraphQL API, and the asset graph in headless Chromium where installed) over a
real instance, and the README's main job (`python -m rasteret_pipelines.demo`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rasteret_core.collection import Collection
from tests.helpers import browser
from tests.helpers.servers import free_port

from .conftest import write_items

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def cli_env(tmp_path, demo_scenes, scene_server) -> dict[str, str]:
    """Environment that points the unchanged definitions at local scenes and a fresh instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ)
    env.update({
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "RASTERET_STAC_SOURCE": str(write_items(tmp_path / "items.json", demo_scenes.items)),
        "RASTERET_STORAGE": str(tmp_path / "storage"),
        "RASTERET_S3_ENDPOINT": scene_server.endpoint_url,
        "VIRTUAL_ENV": str(BIN.parent),
    })
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)


def test_dg_check_defs_passes(cli_env):
    checked = run([str(BIN / "dg"), "check", "defs"], cli_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_for_webserver(proc: subprocess.Popen, port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.25)  # polling for readiness, not timing a result
    raise AssertionError("dagster-webserver did not answer in time")


@contextlib.contextmanager
def webserver(env: dict[str, str], cwd: Path, workspace: str = "workspace.yaml"):
    """``dagster-webserver`` on a free port as its own process group; yields the port once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _wait_for_webserver(proc, port)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_materialization_is_seen_by_the_webserver(cli_env, tmp_path):
    materialized = run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "rasteret_pipelines.definitions",
         "--select", "scene_collection", "--partition", "2024-01-05"], cli_env,
    )
    assert materialized.returncode == 0, materialized.stderr[-3000:]
    assert "RUN_SUCCESS" in materialized.stderr
    scenes = Collection.open(tmp_path / "storage" / "collection").scenes(date_range=("2024-01-05", "2024-01-05"))
    assert [s.id for s in scenes] == ["S2A_43PGQ_20240105_0_L2A"]

    with webserver(cli_env, PROJECT) as port:
        nodes = _graphql(port, "{ assetNodes { assetKey { path } isPartitioned "
                               "partitionDefinition { dimensionTypes { name } } } }")["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert {"scene_collection", "ndvi", "ndvi_stats"} <= set(by_key)
        assert all(by_key[k]["isPartitioned"] for k in ("scene_collection", "ndvi", "ndvi_stats"))
        dims = {d["name"] for d in by_key["ndvi"]["partitionDefinition"]["dimensionTypes"]}
        assert dims == {"date", "aoi"}
        asset = _graphql(port, '{ assetOrError(assetKey: {path: ["scene_collection"]}) { ... on Asset { '
                               "assetMaterializations(limit: 5) { partition metadataEntries { label } } } } }")
        (event,) = asset["assetOrError"]["assetMaterializations"]
        assert event["partition"] == "2024-01-05"
        assert {"scenes", "requests"} <= {m["label"] for m in event["metadataEntries"]}
        if browser.chromium():  # the asset graph as a user sees it, where Chromium is installed
            shot = tmp_path / "asset-lineage.png"
            text = browser.screenshot(f"http://127.0.0.1:{port}/locations/rasteret/asset-groups/ndvi/lineage", shot,
                                      wait_for=["ndvi_stats", "scene_collection", "Asset checks"])
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
            assert {"ndvi", "ndvi_stats", "scene_collection"} <= set(text.split())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The README's main job, run once as a user runs it: its folder and its printed report."""
    root = tmp_path_factory.mktemp("demo-run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_", "AWS_"))}
    env["RASTERET_DEMO_DIR"] = str(root / "demo")
    done = run([sys.executable, "-m", "rasteret_pipelines.demo"], env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return root / "demo", done


def test_the_main_job_runs_end_to_end_on_the_embedded_demo(demo_run):
    demo, done = demo_run
    assert "7 runs" in done.stdout  # per date: the collection, then NDVI for all AOIs; then the time series
    assert list((demo / "storage" / "ndvi_timeseries" / "charts").glob("*.png")), done.stdout
    outputs = list((demo / "storage" / "ndvi").rglob("*.tif"))
    assert outputs, done.stdout
    assert " 0 header requests" in done.stdout and "AWS" not in done.stdout


IMAGES = "[...{root}.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 0)"
SPARKLINES = ("(() => { const rows = " + IMAGES.format(root="document") + ".filter(i => i.closest('tr')"
              " && i.closest('tr').innerText.trim().startsWith('NDVI ')); return rows.length >= 3 ? "
              "rows.map(i => [i.alt, i.naturalWidth, i.naturalHeight]) : null; })()")
DIALOG_IMAGES = ("(() => { const d = document.querySelector('[role=dialog], .bp5-dialog'); if (!d) return null;"
                 " const im = " + IMAGES.format(root="d") + "; return im.length ? "
                 "im.map(i => [i.alt, i.naturalWidth, i.naturalHeight]) : null; })()")


def show_markdown(row: str) -> str:
    """JavaScript clicking "[Show Markdown]" in the metadata row whose key is ``row`` (once)."""
    return ("(() => { if (document.querySelector('[role=dialog], .bp5-dialog')) return;"
            " const tr = [...document.querySelectorAll('tr')].find(r => r.innerText.trim().startsWith("
            f"{json.dumps(row)})); const a = tr && [...tr.querySelectorAll('a')]"
            ".find(e => e.innerText.trim() === '[Show Markdown]'); if (a) a.click(); })()")


@pytest.mark.skipif(browser.chromium() is None, reason="Chromium is not installed (scripts/install-system-deps.sh)")
def test_a_user_sees_each_fields_chart_and_the_ndvi_map_in_the_ui(demo_run, tmp_path):
    from rasteret_pipelines.demo import demo_environment

    demo, _ = demo_run
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASTERET_", "DAGSTER_", "AWS_"))}
    env.update(demo_environment(demo, "http://127.0.0.1:9"))  # the UI shows stored metadata: no data is read
    with webserver(env, Path(env["DAGSTER_HOME"]), str(PROJECT / "workspace.yaml")) as port:
        base = f"http://127.0.0.1:{port}/assets"
        in_place, chart = browser.probe(f"{base}/ndvi_timeseries", tmp_path / "timeseries.png",
                                        [(None, SPARKLINES), (show_markdown("chart hesaraghatta_farm"), DIALOG_IMAGES)])
        # every field's chart is on the page without a click; the full one opens from its row
        assert sorted(alt for alt, _, _ in in_place) == [
            "NDVI bangalore_aoi1", "NDVI bangalore_aoi2", "NDVI hesaraghatta_farm"]
        assert chart[0][0] == "NDVI time series hesaraghatta_farm" and chart[0][1] >= 600
        (preview,) = browser.probe(f"{base}/ndvi", tmp_path / "ndvi.png", [(show_markdown("preview"), DIALOG_IMAGES)])
        alt, width, height = preview[0]
        assert alt.startswith("NDVI ") and alt.endswith("2024-01-15") and max(width, height) >= 256
