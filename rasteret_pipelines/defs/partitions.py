"""Partitions: one per UTC date for collections, date x AOI for NDVI and statistics.

AOIs are data, not code: ``aois`` is a dynamic partition set kept in step with the AOI source
(``RASTERET_AOIS``) by the ``aoi_source`` sensor, so adding a field needs no redeploy.
"""

from __future__ import annotations

from collections.abc import Iterable

import datetime as dt

import dagster as dg

from rasteret_core.errors import RasteretError
from rasteret_pipelines import settings


def _end_exclusive() -> str | None:
    """Dagster's ``end_date`` excludes its day; ``RASTERET_END_DATE`` names the last one."""
    last = settings.end_date()
    return (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat() if last else None


DATES = dg.DailyPartitionsDefinition(start_date=settings.start_date(), end_date=_end_exclusive(), timezone="UTC")
AOIS = dg.DynamicPartitionsDefinition(name="aois")
DATE_AOI = dg.MultiPartitionsDefinition({"date": DATES, "aoi": AOIS})


def date_aoi(key: str) -> tuple[str, str]:
    """(date, aoi) of a date x AOI partition key."""
    dims = DATE_AOI.get_partition_key_from_str(key).keys_by_dimension
    return dims["date"], dims["aoi"]


def by_date(keys: Iterable[str]) -> dict[str, list[str]]:
    """Date x AOI partition keys grouped by date (dates and AOIs sorted): one read per date."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        day, aoi = date_aoi(key)
        grouped.setdefault(day, []).append(aoi)
    return {day: sorted(grouped[day]) for day in sorted(grouped)}


def partition_key(day: str, aoi: str) -> str:
    """The date x AOI partition key string (as ``context.partition_keys`` holds it)."""
    return str(dg.MultiPartitionKey({"date": day, "aoi": aoi}))


def sync_aois(instance: dg.DagsterInstance, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Make the ``aois`` partitions equal ``names``; returns (added, removed).

    For scripts and tests that run without the daemon; deployments let the sensor do it. Safe
    when several runs, sensors or scripts register the same AOIs at once (see :func:`add_aois`).
    """
    known = set(instance.get_dynamic_partitions(AOIS.name))
    wanted = set(names)
    removed = sorted(known - wanted)
    added = add_aois(instance, sorted(wanted))
    for name in removed:
        instance.delete_dynamic_partition(AOIS.name, name)
    return added, removed


def add_aois(instance: dg.DagsterInstance, names: Iterable[str], *, attempts: int = 5) -> list[str]:
    """Register the AOIs of ``names`` not registered yet; returns those this call added.

    Idempotent under concurrency (two runs, two sensors, a script at once): Dagster's storage
    adds keys by a read then an insert under a uniqueness constraint, so a process losing a race
    to another adding the same key gets the database's integrity error (a different class on
    SQLite and PostgreSQL, both ``IntegrityError`` in the DB-API's sense). The keys are then
    read again and only the still missing ones added.

    Raises:
        AoiRegistrationError: the keys are still missing after ``attempts`` tries.
    """
    wanted = sorted(set(names))
    added: list[str] = []
    for _ in range(attempts):
        missing = _missing(instance, wanted)
        if not missing:
            return added
        try:
            instance.add_dynamic_partitions(AOIS.name, missing)
        except Exception as exc:  # noqa: BLE001 - re-raised unless a concurrent add explains it
            if not is_integrity_error(exc):
                raise
            continue  # another process added some of them first: read again
        added += missing
    missing = _missing(instance, wanted)
    if missing:
        raise AoiRegistrationError(f"AOI partitions {missing} still not registered after {attempts} attempts"
                                   " (other processes kept adding the same keys)")
    return added


class AoiRegistrationError(RasteretError):
    """AOI partitions could not be registered."""


def _missing(instance: dg.DagsterInstance, wanted: list[str]) -> list[str]:
    known = set(instance.get_dynamic_partitions(AOIS.name))
    return [n for n in wanted if n not in known]


def is_integrity_error(exc: BaseException) -> bool:
    """Whether ``exc`` or one of its causes is a database integrity error (a unique key taken).

    By the DB-API's class name (PEP 249), so every backend Dagster's storage runs on counts:
    SQLAlchemy's wrapper, ``sqlite3.IntegrityError``, psycopg's ``UniqueViolation`` (a subclass
    of its ``IntegrityError``), MySQL drivers' ``IntegrityError``.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if any(cls.__name__ == "IntegrityError" for cls in type(cause).__mro__):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
