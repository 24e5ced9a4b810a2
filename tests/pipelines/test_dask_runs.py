"""An NDVI run scaled out on Dask: a real ``dask scheduler`` and two ``dask worker`` processes
started here, reached by address as a team's cluster would be. One task per date, the outputs
written by the workers byte for byte the same as the in-process run's, the same per-partition
metadata, and no credential in a task."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import cloudpickle
import dagster as dg
import pytest
from distributed.diagnostics.plugin import WorkerPlugin

from rasteret_pipelines.definitions import defs
from rasteret_pipelines.defs.partitions import partition_key
from rasteret_pipelines.defs.resources import CogReader, DaskCluster, Storage
from tests.helpers.servers import free_port

distributed = pytest.importorskip("distributed")
BIN = Path(sys.executable).parent
DAYS = ["2024-01-05", "2024-01-10"]
AOIS = ["bangalore_aoi1", "hesaraghatta_farm"]


@pytest.fixture(scope="module")
def scheduler_address():
    """``dask scheduler`` and ``dask worker --nworkers 2`` as separate processes on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # the workers' own (empty) chain
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "1GiB"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True))
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _materialize_ndvi(pipeline: dict, instance: dg.DagsterInstance, root: Path, dask: DaskCluster) -> dg.ExecuteInProcessResult:
    resources = {**pipeline, "storage": Storage(root=str(root)), "dask": dask}
    for day in DAYS:
        assert dg.materialize([defs.get_assets_def("scene_collection")], partition_key=day, resources=resources,
                              instance=instance).success
    job = dg.materialize([defs.get_assets_def("ndvi")], resources=resources, instance=instance, tags={
        "dagster/asset_partition_range_start": partition_key(DAYS[0], AOIS[0]),
        "dagster/asset_partition_range_end": partition_key(DAYS[-1], AOIS[-1]),
    })
    assert job.success
    return job


def _dates_between(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _outputs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "ndvi").rglob("*")) if p.is_file()}


def _partition_figures(instance: dg.DagsterInstance) -> dict[str, tuple]:
    figures = {}
    for key in instance.get_materialized_partitions(dg.AssetKey("ndvi")):
        record = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("ndvi"),
                                                                       asset_partitions=[key]), limit=1).records[0]
        meta = record.asset_materialization.metadata
        figures[key] = (meta["rasters"].value, meta["scene_ids"].value, meta["requests"].value)
    return figures


class _DieOnFirstNdviTask(WorkerPlugin):
    """Kills the worker process the first time any worker starts a date task (a marker file
    makes it once across processes): a worker lost mid-task, as an evicted pod would be."""

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith("rasteret-ndvi"):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(key).encode())
            os.close(fd)
            os._exit(1)


def test_a_run_on_two_dask_workers_writes_the_in_process_outputs_byte_for_byte_though_a_worker_dies(
        pipeline, tmp_path, scheduler_address):
    marker = tmp_path / "killed"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import the tests
    with distributed.Client(scheduler_address) as client:
        client.register_plugin(_DieOnFirstNdviTask(str(marker)), name="die-once")
        try:
            with dg.instance_for_test() as here, dg.instance_for_test() as there:
                for instance in (here, there):
                    instance.add_dynamic_partitions("aois", AOIS)
                _materialize_ndvi(pipeline, there, tmp_path / "on_workers", DaskCluster(address=scheduler_address))
                _materialize_ndvi(pipeline, here, tmp_path / "in_process", DaskCluster())
                killed = marker.read_text()  # a worker did die in the middle of a date's task...
                assert killed.startswith("rasteret-ndvi-")
                # ...and the date was computed again elsewhere: every output as the in-process run's
                local, remote = _outputs(tmp_path / "in_process"), _outputs(tmp_path / "on_workers")
                assert len(local) == 2 * len(DAYS) * len(AOIS)  # a COG and its sidecar per date x AOI
                assert remote.keys() == local.keys()
                assert [k for k in local if remote[k] != local[k]] == []
                assert _partition_figures(there) == _partition_figures(here)
                # the work ran on the workers, one task per date of the run
                computed = client.run_on_scheduler(lambda dask_scheduler: sorted(
                    {t[0] for t in dask_scheduler.transition_log
                     if t[2] == "memory" and str(t[0]).startswith("rasteret")}))
                run_dates = sorted({key.split("|")[1] for key in there.get_materialized_partitions(dg.AssetKey("ndvi"))}
                                   | set(_dates_between(DAYS[0], DAYS[-1])))
                assert sorted(k.split("-", 2)[2][:10] for k in computed) == run_dates
        finally:
            client.unregister_worker_plugin("die-once")
            client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_credentials_never_travel_with_a_task(pipeline, tmp_path, scheduler_address):
    reader = CogReader(endpoint_url=pipeline["reader"].endpoint_url, aws_access_key_id="AKIAEXAMPLEKEY0000000",
                       aws_secret_access_key="never/in/a/task/0000000000000000000000")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("aois", AOIS)
        resources = {**pipeline, "reader": reader, "storage": Storage(root=str(tmp_path / "s")),
                     "dask": DaskCluster(address=scheduler_address)}
        assert dg.materialize([defs.get_assets_def("scene_collection")], partition_key=DAYS[0], resources=resources,
                              instance=instance).success
        result = dg.materialize([defs.get_assets_def("ndvi")], partition_key=partition_key(DAYS[0], AOIS[0]),
                                resources=resources, instance=instance, raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert "credentials never travel with a task" in failure.step_failure_data.error.message
        assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []  # not retried
