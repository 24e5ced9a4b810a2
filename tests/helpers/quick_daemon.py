"""``dagster-daemon`` with a shorter backfill loop, for the tests that drive a real deployment.

Dagster 1.13's backfill daemon waits a fixed 30 s between iterations
(``dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS``, read again on every loop, not
configurable in ``dagster.yaml``); a backfill over three dependency levels spends most of its
time in those waits. The tests check what the daemon does, not its pace, so they run the real
daemon with a 3 s loop: ``python -m tests.helpers.quick_daemon run -w workspace.yaml``.
"""

from __future__ import annotations

import sys

import dagster._daemon.controller as controller
from dagster._daemon.cli import main

LOOP_SECONDS = 3

if __name__ == "__main__":
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = LOOP_SECONDS
    sys.argv[0] = "dagster-daemon"
    sys.exit(main())
