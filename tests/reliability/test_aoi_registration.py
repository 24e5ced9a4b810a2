"""Registering AOI partitions is idempotent under concurrency: two processes (two runs, two
sensors, a script) adding the same AOI keys at the same instant to one Dagster instance both
succeed and leave each key once.

Dagster's storage adds keys by a read then an insert under a uniqueness constraint; started
together by a barrier, the second insert of the same key fails with the database's integrity
error unless the caller tolerates it (``partitions.add_aois``).
"""

from __future__ import annotations

import multiprocessing
from collections import Counter

import dagster as dg
import pytest

from rasteret_pipelines.defs.partitions import AOIS, add_aois, is_integrity_error

from ._children.harness import dagster_home

ROUNDS = 10
PER_ROUND = 3


def names_of(round_: int) -> list[str]:
    return [f"field_{round_}_{i}" for i in range(PER_ROUND)]


def register_rounds(home: str, barrier, plain: bool, results) -> None:
    """In a child: at each round, wait for the other process, then register that round's AOIs
    (``plain``: Dagster's own add, the racing check-then-add). Puts one error text per round
    that raised on ``results``, then ``None``."""
    import os

    os.environ["DAGSTER_HOME"] = home
    try:
        with dg.DagsterInstance.get() as instance:
            for round_ in range(ROUNDS):
                barrier.wait(timeout=60)
                try:
                    if plain:
                        instance.add_dynamic_partitions(AOIS.name, names_of(round_))
                    else:
                        add_aois(instance, names_of(round_))
                except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
                    results.put(f"round {round_}: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        results.put(None)


def race(home, plain: bool = False) -> list[str]:
    """Two spawned processes, barrier-started, ``ROUNDS`` rounds; their errors."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=register_rounds, args=(str(home), barrier, plain, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    errors, running = [], len(procs)
    try:
        while running:
            item = results.get(timeout=120)
            if item is None:
                running -= 1
            else:
                errors.append(item)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0, 0]
    return errors


@pytest.fixture
def home(tmp_path):
    folder = dagster_home(tmp_path / "dagster_home")
    with dg.DagsterInstance.from_config(str(folder)):
        pass  # create the SQLite storage once, before the concurrent processes (as a deployment does)
    return folder


def test_two_processes_registering_the_same_aois_at_once_never_raise(home):
    assert race(home) == []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        keys = Counter(instance.get_dynamic_partitions(AOIS.name))
    assert keys == Counter(n for r in range(ROUNDS) for n in names_of(r))  # each key once


def test_add_aois_returns_only_the_keys_it_added_and_is_a_no_op_the_second_time(home):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert add_aois(instance, ["b", "a"]) == ["a", "b"]
        assert add_aois(instance, ["a", "b", "c"]) == ["c"]
        assert add_aois(instance, ["c", "a"]) == []
        assert instance.get_dynamic_partitions(AOIS.name) == ["a", "b", "c"]


def test_integrity_errors_are_recognised_by_their_db_api_class_on_any_backend():
    import sqlite3

    import sqlalchemy.exc

    class UniqueViolation(type("IntegrityError", (Exception,), {})):  # psycopg's shape
        pass

    wrapped = sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert is_integrity_error(wrapped)
    assert is_integrity_error(UniqueViolation("duplicate key value violates unique constraint"))
    try:
        try:
            raise sqlite3.IntegrityError("UNIQUE constraint failed")
        except sqlite3.IntegrityError as inner:
            raise RuntimeError("storage failed") from inner
    except RuntimeError as outer:
        assert is_integrity_error(outer)  # found through the cause
    assert not is_integrity_error(sqlite3.OperationalError("database is locked"))
    assert not is_integrity_error(ValueError("IntegrityError in the text only"))
