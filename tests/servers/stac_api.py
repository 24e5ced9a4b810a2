"""A real STAC API on 127.0.0.1: stac-fastapi-pgstac over a throw-away PostgreSQL cluster.

The cluster lives in a temporary folder (``initdb``), runs with durability switched off
(tests only), gets the pgstac schema from ``pypgstac migrate``, and ``eo:cloud_cover`` is
registered as a numeric queryable so comparisons and sorting are numeric, not textual.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PG_USER = "rasteret"
PG_PASSWORD = "rasteret-test"
PG_DB = "stac"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir() -> Path | None:
    """The newest PostgreSQL whose install also has the PostGIS extension."""
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        version = Path(bindir).parent.name
        if glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
            return Path(bindir)
    return None


def postgres_available() -> tuple[bool, str]:
    """Whether a PostgreSQL + PostGIS install is here, and if not, why."""
    if _pg_bindir() is None:
        return False, "PostgreSQL with PostGIS not installed (run scripts/install-system-deps.sh)"
    for module in ("stac_fastapi.pgstac", "pypgstac", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return False, f"python package {module} not installed"
    return True, ""


class StacApiServer:
    """Start/stop a pgstac-backed STAC API; load collections and items into it."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="rasteret-stac-"))
        self.pg_port = _free_port()
        self.api_port = _free_port()
        self._pg_bin = _pg_bindir()
        self._api: subprocess.Popen | None = None
        self._run_as: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.pg_port}/{PG_DB}"

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> "StacApiServer":
        ok, reason = postgres_available()
        if not ok:
            raise RuntimeError(reason)
        try:
            self._start()
        except BaseException:
            self.stop()  # never leave a half-started cluster behind
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "pgdata"
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._run_as = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chmod(self.workdir, 0o777)
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        pwfile = self.workdir / "pw"
        pwfile.write_text(PG_PASSWORD)
        os.chmod(pwfile, 0o644)
        self._pg("initdb", "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile), "-A", "md5", "--no-sync", "-E", "UTF8")
        self._pg(
            "pg_ctl", "-D", str(data), "-l", str(self.workdir / "pg.log"), "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.workdir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        )
        env = self._env()
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", PG_USER, "-d", "postgres",
                        "-c", f"create database {PG_DB}"], check=True, env=env, capture_output=True)
        subprocess.run([sys.executable, "-m", "pypgstac.pypgstac", "migrate", "--dsn", self.dsn],
                       check=True, env=env, capture_output=True)
        self.sql("set search_path to pgstac, public; insert into pgstac.queryables(name, definition, property_wrapper, property_index_type) "
                 "values ('eo:cloud_cover', '{\"type\":\"number\"}', 'to_float', 'BTREE') on conflict do nothing;")
        log = open(self.workdir / "api.log", "wb")
        self._api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.api_port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._wait_ready()

    def stop(self) -> None:
        if self._api is not None:
            self._api.terminate()
            try:
                self._api.wait(10)
            except subprocess.TimeoutExpired:
                self._api.kill()
            self._api = None
        data = self.workdir / "pgdata"
        if data.exists():
            subprocess.run(self._as_user([str(self._pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "StacApiServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- data ----------------------------------------------------------------------------
    def load_collections(self, collections: list[dict]) -> None:
        self._load("collections", collections)

    def load_items(self, items: list[dict]) -> None:
        self._load("items", items)

    def clear_items(self, collection_id: str | None = None) -> None:
        where = f" where collection = '{collection_id}'" if collection_id else ""
        self.sql(f"delete from pgstac.items{where};")

    def create_database(self, name: str) -> str:
        """A further database on the same cluster (e.g. Dagster's storage); returns its DSN."""
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", PG_USER, "-d", "postgres",
                        "-c", f"create database {name}"], check=True, env=self._env(), capture_output=True)
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.pg_port}/{name}"

    def sql(self, statement: str) -> str:
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", PG_USER, "-d", PG_DB, "-v", "ON_ERROR_STOP=1",
             "-tAc", statement],
            check=True, env=self._env(), capture_output=True, text=True,
        )
        return result.stdout

    # --- internals -----------------------------------------------------------------------
    def _load(self, table: str, docs: list[dict]) -> None:
        path = self.workdir / f"load-{table}-{time.monotonic_ns()}.ndjson"
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
        subprocess.run(
            [sys.executable, "-m", "pypgstac.pypgstac", "load", table, str(path), "--dsn", self.dsn, "--method", "upsert"],
            check=True, env=self._env(), capture_output=True,
        )
        path.unlink()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PGUSER=PG_USER, PGPASSWORD=PG_PASSWORD, PGHOST="127.0.0.1", PGPORT=str(self.pg_port), PGDATABASE=PG_DB,
            POSTGRES_USER=PG_USER, POSTGRES_PASS=PG_PASSWORD, POSTGRES_HOST_READER="127.0.0.1",
            POSTGRES_HOST_WRITER="127.0.0.1", POSTGRES_PORT=str(self.pg_port), POSTGRES_DBNAME=PG_DB,
        )
        return env

    def _as_user(self, argv: list[str]) -> list[str]:
        if self._run_as is None:
            return argv
        return ["runuser", "-u", self._run_as, "--", *argv]

    def _pg(self, tool: str, *args: str) -> None:
        result = subprocess.run(self._as_user([str(self._pg_bin / tool), *args]), capture_output=True, text=True)
        if result.returncode != 0:
            log = (self.workdir / "pg.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr[-2000:]}\n{tail}")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._api is not None and self._api.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)  # polling for readiness, not timing anything
        log = (self.workdir / "api.log")
        raise RuntimeError(f"STAC API did not start: {log.read_text()[-3000:] if log.exists() else ''}")
