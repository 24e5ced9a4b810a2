"""Parent side of the child-process tests: start ``materialize.py`` children, wait for their
READY/RESULT lines (polling the pipe against a deadline), kill or release them, and always
stop them at the end."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
MODULE = "tests.reliability._children.materialize"
_SERIAL = itertools.count()
# seconds a child may take to reach its next line: generous, only reached when something hangs
# (``kill -USR1 <pid>`` makes a stuck child write its Python stacks to its stderr log)
WAIT = 120.0


def dagster_home(folder: Path) -> Path:
    """A ``DAGSTER_HOME`` with the project's ``dagster.yaml`` (SQLite storage under it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    return folder


def child_env(home: Path, tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1", "TMPDIR": str(tmp),
                "PYTHONUNBUFFERED": "1"})
    return env


class Child:
    """One ``materialize.py`` process in its own session; stdout is read line by line."""

    def __init__(self, params: dict, *, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", MODULE, json.dumps(params)], cwd=REPO, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True,
            )
        self.pid = self.proc.pid
        self._buffer = b""
        self.lines: list[str] = []

    def _describe(self) -> str:
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return f"child {self.pid} (exit {self.proc.poll()}); stdout {self.lines!r}; stderr tail:\n{tail}"

    def _take(self, prefix: str) -> dict | None:
        """The payload of the first complete buffered line starting with ``prefix``, if any."""
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            text = line.decode(errors="replace")
            self.lines.append(text)
            if text.startswith(prefix + " "):
                return json.loads(text[len(prefix) + 1:])
        return None

    def _feed(self, prefix: str) -> None:
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            self.proc.wait(timeout=WAIT)
            raise AssertionError(f"child ended before a {prefix} line: {self._describe()}")
        self._buffer += chunk

    def wait_line(self, prefix: str, timeout: float = WAIT) -> dict:
        """The JSON after the next stdout line starting with ``prefix`` (fails on exit or timeout)."""
        return wait_any([self], prefix, timeout)[1]

    def release(self) -> None:
        """Let a child paused with ``then: gate`` continue."""
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def sigkill(self) -> int:
        """SIGKILL the child itself (no clean-up handler can run) and return its exit status."""
        os.kill(self.pid, signal.SIGKILL)
        return self.proc.wait(timeout=WAIT)

    def finish(self) -> dict:
        """The child's RESULT, after it exited."""
        result = self.wait_line("RESULT")
        self.proc.wait(timeout=WAIT)
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # its own session: pgid == pid
            self.proc.wait(timeout=WAIT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def wait_any(kids: list[Child], prefix: str, timeout: float = WAIT) -> tuple[Child, dict]:
    """The first of ``kids`` to print a ``prefix`` line, and that line's JSON."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for kid in kids:
            sel.register(kid.proc.stdout.fileno(), selectors.EVENT_READ, kid)
        while True:
            for kid in kids:
                payload = kid._take(prefix)
                if payload is not None:
                    return kid, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {prefix} line within {timeout:.0f} s: "
                                     + "\n".join(kid._describe() for kid in kids))
            for key, _ in sel.select(left):
                key.data._feed(prefix)


@contextlib.contextmanager
def children(*params: dict, env: dict[str, str], logs: Path):
    """Start one child per ``params`` at once; they are always stopped on the way out."""
    logs.mkdir(parents=True, exist_ok=True)
    started: list[Child] = []
    try:
        for p in params:
            started.append(Child(p, env=env, log=logs / f"child-{next(_SERIAL)}.stderr"))
        yield started
    finally:
        for child in started:
            child.stop()
