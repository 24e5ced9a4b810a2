"""Materialize pipeline assets for one partition in this process, optionally pausing at a write.

Run by the reliability tests as ``python -m tests.reliability._children.materialize '<json>'``
from the repository root. Parameters (JSON object):

- ``assets``: asset names, e.g. ``["scene_collection"]`` or ``["ndvi", "ndvi_stats"]``
- ``partition``: a date (``"2024-01-05"``) or ``{"date": ..., "aoi": ...}``
- ``items``, ``endpoint``, ``storage``, optional ``aois``: the resources (as the pipeline tests build them)
- optional ``pause``: ``{"target": <file path>, "at": <point>, "then": "block" | "gate"}`` or a
  list of them (one per target). When this process writes ``target`` through
  ``rasteret_core.storage.atomic_write`` it prints ``READY <json>`` on stdout at the chosen
  point, then blocks forever (``block``: the parent kills it) or until a line arrives on stdin
  (``gate``: the parent releases it). Points:
  ``before_write`` (nothing of the new version written yet), ``partial_temp`` (half of the new
  bytes written to the temporary file), ``temp_written`` (the whole new version in the
  temporary file, fsynced, not yet renamed over the target).

With ``"start_gate": true`` the child imports everything, prints ``LOADED {}`` and waits for a
line on stdin before it starts the run (so several children can load in parallel and still
run one at a time).

The instance is ``DagsterInstance.get()`` (the ``DAGSTER_HOME`` of the environment). The last
stdout line is ``RESULT <json>`` with the run's success, status, id, step retries and failures,
and its materialization metadata.

The patches live only in this process: the product code is unchanged.
"""

from __future__ import annotations

import builtins
import faulthandler
import json
import os
import signal
import sys
import threading

POINTS = ("before_write", "partial_temp", "temp_written")


def announce(at: str, **details) -> None:
    import dagster as dg

    run_id = dg.AssetExecutionContext.get().run.run_id
    sys.stdout.write("READY " + json.dumps({"at": at, "run_id": run_id, "pid": os.getpid(), **details}) + "\n")
    sys.stdout.flush()


def hold(then: str) -> None:
    if then == "gate":
        sys.stdin.readline()
    else:
        threading.Event().wait()  # until SIGKILL


def install_pauses(pauses: list[dict]) -> None:
    """Wrap ``atomic_write`` (and, inside it, the temp file's write and fsync) so that each
    pause's ``target`` pauses at its point. Other writes go through unchanged."""
    import rasteret_core.storage as storage

    by_target = {}
    for pause in pauses:
        if pause["at"] not in POINTS:
            raise SystemExit(f"unknown pause point {pause['at']!r}")
        by_target[os.path.realpath(pause["target"])] = (pause["at"], pause.get("then", "block"))
    armed: dict = {}  # the paused target being written now: target, at, then, bytes
    original = storage.atomic_write

    def is_armed_temp(path) -> bool:
        path = os.path.realpath(os.fspath(path))
        parent, base = os.path.split(armed["target"])
        name = os.path.basename(path)
        return os.path.dirname(path) == parent and name.startswith(f".{base}.") and name.endswith(".tmp")

    def paused_atomic_write(fs, path, data):
        target = os.path.realpath(path)
        if target not in by_target:
            return original(fs, path, data)
        at, then = by_target.pop(target)  # pause at the first write of the target only
        armed.update(target=target, at=at, then=then, bytes=len(data))
        try:
            if at == "before_write":
                announce(at, target=target, bytes=len(data))
                hold(then)
            return original(fs, path, data)
        finally:
            armed.clear()

    class HalfWriter:
        """The temporary file, written only halfway before pausing."""

        def __init__(self, f):
            self._f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def write(self, data):
            half = len(data) // 2
            self._f.write(data[:half])
            self._f.flush()
            os.fsync(self._f.fileno())
            announce(armed["at"], target=armed["target"], tmp=self._f.name, bytes=len(data), written=half)
            hold(armed["then"])
            return half + self._f.write(data[half:])

        def __getattr__(self, name):
            return getattr(self._f, name)

    temp_fds: dict[int, str] = {}

    def paused_open(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)
        if armed and "w" in mode and is_armed_temp(path):
            if armed["at"] == "partial_temp":
                return HalfWriter(f)
            temp_fds[f.fileno()] = os.fspath(path)
        return f

    class OsWithPausingFsync:
        """``os`` as seen by ``rasteret_core.storage``, pausing after the temp file's fsync."""

        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def fsync(fd):
            os.fsync(fd)
            tmp = temp_fds.pop(fd, None)
            if tmp is not None and armed.get("at") == "temp_written":
                announce("temp_written", target=armed["target"], tmp=tmp, bytes=armed["bytes"],
                         written=os.path.getsize(tmp))
                hold(armed["then"])

    import rasteret_core.storage_update as storage_update

    original_update = storage_update.update_file

    def paused_update_file(fs, path, change, **kwargs):
        # a "before_write" pause waits before the writer takes the collection's lock (or reads
        # the version it will write conditionally), so several writers can be gated at once
        target = os.path.realpath(path)
        if by_target.get(target, (None,))[0] == "before_write":
            _, then = by_target.pop(target)
            announce("before_write", target=target)
            hold(then)
        return original_update(fs, path, change, **kwargs)

    storage.open = paused_open
    storage.os = OsWithPausingFsync()
    for name, module in list(sys.modules.items()):
        if name.startswith("rasteret_core") and getattr(module, "update_file", None) is original_update:
            module.update_file = paused_update_file
    # modules that imported atomic_write by name hold their own reference
    for name, module in list(sys.modules.items()):
        if name.startswith("rasteret_core") and getattr(module, "atomic_write", None) is original:
            module.atomic_write = paused_atomic_write


def main(params: dict) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stuck child can be asked for its stacks
    import dagster as dg

    from rasteret_pipelines.definitions import defs
    from rasteret_pipelines.defs.resources import Aois, CogReader, DaskCluster, StacSource, Storage
    from rasteret_pipelines.defs.partitions import sync_aois
    from rasteret_pipelines.settings import aoi_file, aoi_names

    # load every writer module before patching, so each one's reference is replaced
    import rasteret_core.collection.store  # noqa: F401
    import rasteret_core.products.outputs
    import rasteret_core.products.timeseries

    pauses = params.get("pause") or []
    install_pauses([pauses] if isinstance(pauses, dict) else pauses)
    resources = {
        "stac": StacSource(source=params["items"]),
        "reader": CogReader(endpoint_url=params["endpoint"], retries=1),
        "storage": Storage(root=params["storage"]),
        "aois": Aois(path=params["aois"]) if params.get("aois") else Aois(),
        "dask": DaskCluster(),
    }
    partition = params["partition"]
    key = dg.MultiPartitionKey(partition) if isinstance(partition, dict) else partition
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if params.get("start_gate"):
        sys.stdout.write("LOADED {}\n")
        sys.stdout.flush()
        hold("gate")
    with dg.DagsterInstance.get() as instance:
        sync_aois(instance, aoi_names(aoi_file()))  # the aoi_source sensor's job in a deployment
        result = dg.materialize([defs.get_assets_def(a) for a in params["assets"]], partition_key=key,
                                resources=resources, instance=instance, run_config=run_config, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        metadata = {
            node: {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()
                   if k != "preview"}  # inline PNGs
            for node in params["assets"] if result.asset_materializations_for_node(node)
        }
        # the assets' retry policy re-runs a failed step after a back-off: a run can succeed only
        # on a later attempt, so the attempts that failed are reported too
        failures = [str(e.event_specific_data.error.message) for e in result.all_events
                    if e.event_type_value in ("STEP_FAILURE", "STEP_UP_FOR_RETRY") and e.event_specific_data.error]
        retries = sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
        out = {"success": result.success, "run_id": result.run_id, "status": run.status.value,
               "checks_passed": all(c.passed for c in result.get_asset_check_evaluations()),
               "retries": retries, "failures": failures, "metadata": metadata}
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
