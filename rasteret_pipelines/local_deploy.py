"""A deployment on one machine, as a team runs one: ``dagster-daemon`` and
``dagster-webserver`` as separate processes over one ``DAGSTER_HOME`` (SQLite or Postgres),
each run in its own process, driven over the webserver's GraphQL API as the UI drives it.

Used by the team-instance tests and the pipeline benchmark (``bench/pipeline.py``):

    with LocalDeployment(home, env) as dep:
        backfill = dep.launch_backfill({"scene_collection": ("2024-01-01", "2024-01-31")})
        status = dep.wait_for_backfill(backfill, timeout=600)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class DeploymentError(RuntimeError):
    """A process of the deployment exited or did not become ready; carries its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalDeployment:
    """Start the daemon and the webserver on ``home``; stop them (their process groups) on exit.

    ``env`` is the environment of both (``DAGSTER_HOME`` is set from ``home``); ``logs`` the
    folder for their output (default: ``home``); ``project`` the checkout whose
    ``workspace.yaml`` is served (default: this one); ``daemon`` the command that starts the
    daemon, before its ``run`` arguments (default: ``dagster-daemon``).
    """

    def __init__(self, home: str | os.PathLike[str], env: Mapping[str, str], *, logs: Path | None = None,
                 project: Path = PROJECT, daemon: Sequence[str] | None = None) -> None:
        self.home = Path(home)
        self.project = Path(project)
        self.env = {**env, "DAGSTER_HOME": str(self.home), "DAGSTER_DISABLE_TELEMETRY": "1"}
        self.logs = Path(logs or self.home)
        self.workspace = self.project / "workspace.yaml"
        self.port = free_port()
        self.daemon = list(daemon or [str(BIN / "dagster-daemon")])
        self._procs: dict[str, subprocess.Popen] = {}

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> "LocalDeployment":
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._migrate(timeout)
            self._spawn("daemon", [*self.daemon, "run", "-w", str(self.workspace)])
            self._spawn("webserver", [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1",
                                      "-p", str(self.port)])
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self._procs.values():
            _stop_group(proc)
        self._procs.clear()

    def __enter__(self) -> "LocalDeployment":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # --- GraphQL ---------------------------------------------------------------------------
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 60) -> dict:
        """POST a query to the webserver; raises with the errors if the answer has any."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:  # the webserver says why in the body
            raise DeploymentError(f"GraphQL HTTP {err.code}: {err.read()[:3000]!r}") from None
        if body.get("errors"):
            raise DeploymentError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def launch_backfill(self, partitions_by_asset: Mapping[str, tuple[str, str]], title: str = "") -> str:
        """Launch an asset backfill as the UI does: per asset, an inclusive (start, end) key range
        (for date x AOI assets a ``aoi|date`` rectangle). Returns the backfill id."""
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": [key]}, "partitions": {"range": {"start": start, "end": end}}}
                for key, (start, end) in partitions_by_asset.items()
            ],
        }
        if title:
            params["title"] = title
        data = self.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {"
            " __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }"
            " ... on InvalidSubsetError { message } ... on PartitionSetNotFoundError { message }"
            " ... on UnauthorizedError { message } } }", {"p": params},
        )["launchPartitionBackfill"]
        if data["__typename"] != "LaunchBackfillSuccess":
            raise DeploymentError(f"backfill not launched: {data}")
        return data["backfillId"]

    def backfill_status(self, backfill_id: str) -> dict:
        return self.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename"
            " ... on PartitionBackfill { id status numPartitions } ... on PythonError { message } } }",
            {"id": backfill_id},
        )["partitionBackfillOrError"]

    def wait_for_backfill(self, backfill_id: str, timeout: float = 600, poll: float = 0.5) -> dict:
        """Poll the backfill until it ends; raises if a process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            status = self.backfill_status(backfill_id)
            if status.get("status") in DONE:
                return status
            time.sleep(poll)  # polling a long operation's state, not timing a result
        raise DeploymentError(f"backfill {backfill_id} not done in {timeout} s: {self.backfill_status(backfill_id)}\n"
                              f"{self.log_tail('daemon')}")

    def wait_until(self, predicate, timeout: float = 300, poll: float = 1.0, what: str = "condition") -> Any:
        """Poll ``predicate()`` until it returns something truthy (the daemon's own pace)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(poll)
        raise DeploymentError(f"{what} not reached in {timeout} s\n{self.log_tail('daemon')}")

    # --- internals -------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self._procs[name] = subprocess.Popen(argv, cwd=self.project, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)  # its own group: stopped with its children

    def _migrate(self, timeout: float) -> None:
        """Create (or upgrade) the instance's storage once, before the daemon and the webserver
        start: on an empty database both would create it at the same moment, and one of them
        fails ("type ... already exists"). Dagster's upgrade guide runs the same step first."""
        try:
            done = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=self.project, env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeploymentError(f"dagster instance migrate did not finish in {timeout} s") from None
        if done.returncode != 0:
            raise DeploymentError(f"dagster instance migrate exited with {done.returncode}:\n"
                                  f"{(done.stdout + done.stderr)[-3000:]}")

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise DeploymentError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                data = self.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name"
                                    " locationOrLoadError { __typename } } } } }", timeout=10)
                entries = data["workspaceOrError"]["locationEntries"]
                kinds = {e["locationOrLoadError"]["__typename"] for e in entries if e["locationOrLoadError"]}
                if "PythonError" in kinds:
                    raise DeploymentError(f"code location failed to load: {data}")
                if entries and kinds == {"RepositoryLocation"}:
                    return
            except OSError:
                pass
            time.sleep(0.5)  # polling for readiness
        raise DeploymentError(f"webserver not ready in {timeout} s:\n{self.log_tail('webserver')}")


def _stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
