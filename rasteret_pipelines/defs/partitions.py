"""Partitions: one per UTC date for collections, date x AOI for NDVI and statistics.

AOIs are data, not code: ``aois`` is a dynamic partition set kept in step with the AOI source
(``RASTERET_AOIS``) by the ``aoi_source`` sensor, so adding a field needs no redeploy.
"""

from __future__ import annotations

from collections.abc import Iterable

import datetime as dt

import dagster as dg

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

    Idempotent under concurrency: storage adds the keys with a uniqueness constraint, so a
    process that loses a race to another adding the same key gets an integrity error (SQLite
    and PostgreSQL raise different classes); the keys are then read again and only the still
    missing ones added.
    """
    wanted = sorted(set(names))
    for _ in range(attempts):
        missing = [n for n in wanted if n not in set(instance.get_dynamic_partitions(AOIS.name))]
        if not missing:
            return []
        try:
            instance.add_dynamic_partitions(AOIS.name, missing)
            return missing
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a concurrent duplicate
            if not _is_duplicate_key(exc):
                raise
    missing = [n for n in wanted if n not in set(instance.get_dynamic_partitions(AOIS.name))]
    if missing:
        raise dg.DagsterInvariantViolationError(f"could not register AOI partitions {missing} after {attempts} attempts")
    return []


def _is_duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is a unique-constraint violation of the storage."""
    seen = 0
    while exc is not None and seen < 5:
        text = f"{type(exc).__name__} {exc}"
        if "IntegrityError" in text or "UniqueViolation" in text or "UNIQUE constraint" in text:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
