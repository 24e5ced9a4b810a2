"""One deadline per header, across all its requests and retries: a server that answers every
request too late costs ``header_deadline``, not retries x timeout, and the error names it."""

from __future__ import annotations

import time

import pytest

from rasteret_core.cog import FetchError, read_header
from rasteret_core.testing.object_store import FaultRule
from tests.helpers.servers import FIXTURES
from tests.reliability.test_hostile_files import S2_B04


def test_a_header_answered_too_late_every_time_stops_at_its_deadline(store, record_property):
    key = S2_B04.relative_to(FIXTURES).as_posix()
    store.add_fault(FaultRule("stall", "*B04.tif", times=50, seconds=0.6))
    started = time.monotonic()
    with pytest.raises(FetchError, match="header_deadline=1") as caught:
        read_header(store.url("public", key), timeout=0.5, retries=5, backoff_base=0.01, header_deadline=1.0)
    elapsed = time.monotonic() - started
    record_property("reliability.header_deadline_1s_elapsed_s", round(elapsed, 2))
    assert "B04.tif" in str(caught.value)
    store.wait_idle()
    # the deadline cut the retries short: 6 attempts of 0.5 s each would have been needed
    assert len(store.requests_for("*B04.tif")) < 6


def test_a_header_deadline_must_be_positive():
    with pytest.raises(ValueError, match="header_deadline"):
        read_header(str(S2_B04), header_deadline=0)
