"""Shared fixtures: real local servers started by the test session itself.

- ``object_store``: the project's S3-compatible object server over the shared fixtures, with a
  public bucket ``public`` and a requester-pays bucket ``payer`` (same files). ``store`` is the
  same server with counters and fault rules reset for the test.
- ``moto_s3``: moto's S3 server with a public-read and a private bucket.
- ``stac_api``: a real STAC API (stac-fastapi-pgstac on a throw-away PostgreSQL cluster).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from rasteret_core.testing.object_store import ObjectStoreServer
from tests.helpers.servers import FIXTURES, moto_s3_server


@pytest.fixture(scope="session")
def shared_fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.skip("the shared fixtures folder (../shared/fixtures) is not present")
    return FIXTURES


@pytest.fixture(scope="session")
def object_store(shared_fixtures_dir):
    server = ObjectStoreServer(
        buckets={"public": shared_fixtures_dir, "payer": shared_fixtures_dir},
        requester_pays={"payer"},
    )
    with server:
        yield server


@pytest.fixture
def store(object_store):
    """The session's object store with fresh counters and no pending faults."""
    object_store.clear_faults()
    object_store.wait_idle()  # answers still in flight from an earlier test would be counted here
    object_store.reset_stats()
    yield object_store
    object_store.clear_faults()
    object_store.wait_idle()


@pytest.fixture(scope="session")
def moto_s3(shared_fixtures_dir):
    pytest.importorskip("moto.server")
    files = sorted(p for p in shared_fixtures_dir.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))
    with moto_s3_server(files, shared_fixtures_dir) as s3:
        yield s3


@pytest.fixture
def aws_test_credentials(monkeypatch):
    """Dummy AWS credentials in the standard environment variables (never real ones)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTRASTERET0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rasteret/test/secret/key/0000000000000000")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return "AKIATESTRASTERET0000", "rasteret/test/secret/key/0000000000000000"


@pytest.fixture(scope="session")
def stac_api():
    from tests.servers.stac_api import StacApiServer, postgres_available

    ok, reason = postgres_available()
    if not ok:
        pytest.skip(reason)
    with StacApiServer() as server:
        yield server


@pytest.fixture(scope="session")
def team_postgres(stac_api):
    """Dagster's team storage: a database of its own on the session's PostgreSQL cluster."""
    from tests.servers.stac_api import PG_PASSWORD, PG_USER

    stac_api.create_database("dagster")
    return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(stac_api.pg_port), "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": PG_PASSWORD, "DAGSTER_PG_DB": "dagster"}


# --- figures measured by the reliability suite, summed over xdist workers -----------------
PREFIX = "reliability."


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    totals: dict[str, float] = defaultdict(float)
    peaks: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if not str(name).startswith(PREFIX) or getattr(report, "when", "call") != "call":
                    continue
                key = name[len(PREFIX):]
                if key.startswith("peak_") or key.startswith("max_"):
                    peaks[key] = max(peaks.get(key, value), value)
                else:
                    totals[key] += value
    if not totals and not peaks:
        return
    terminalreporter.section("reliability figures")
    for key in sorted(totals):
        terminalreporter.write_line(f"{key}: {totals[key]:g}")
    for key in sorted(peaks):
        terminalreporter.write_line(f"{key}: {peaks[key]:g}")
