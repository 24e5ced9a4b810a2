"""Many dates' NDVI, one task per date: in this process, or on a Dask cluster.

A backfill of dates x AOIs is split into one task per date (:func:`ndvi_for_date`: the date's
scenes read once for all its AOIs). Without a client the tasks run here, one after the other;
with a ``distributed.Client`` they run on its workers, which open the collection and write the
outputs to the shared storage themselves. Nothing secret travels with a task: reader options
holding AWS keys are refused (workers sign with their own AWS chain, as :func:`~rasteret_core.load.load`
does). A worker lost mid-task has its date computed again by the scheduler; every output is
written atomically, so a half-written date never shows. Each result comes back with a PNG
preview per AOI instead of the AOI's array, so results stay small whatever the AOI's size.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions
from rasteret_core.collection import Collection
from rasteret_core.errors import ArgumentError
from rasteret_core.products.ndvi_dates import DateNdvi, ndvi_for_date, NdviBands
from rasteret_core.products.ndvi_preview import raster_preview_png


def ndvi_for_dates(
    jobs: Mapping[str, Sequence[str]],
    geometries: Mapping[str, BaseGeometry],
    *,
    collection_root: str,
    bands: NdviBands,
    out_root: str,
    reader_options: ReaderOptions | None = None,
    storage_options: dict[str, Any] | None = None,
    output_reader_options: dict[str, Any] | None = None,
    client: Any = None,
) -> Iterator[DateNdvi]:
    """Each date's :class:`DateNdvi` for ``jobs`` (``{date: [AOI names]}``), in date order.

    ``client``: a ``distributed.Client`` to run one task per date on its workers, or ``None``
    to run them in this process. The other arguments are :func:`ndvi_for_date`'s (the collection
    is opened from ``collection_root`` where the task runs). Each AOI's ``raster`` is replaced
    by its ``preview`` (PNG bytes).

    Raises:
        ArgumentError: ``reader_options`` hold AWS keys while a client is given.
    """
    options = ReaderOptions.coerce(reader_options)
    kwargs = dict(collection_root=collection_root, bands=bands, out_root=out_root, reader_options=options,
                  storage_options=storage_options, output_reader_options=output_reader_options)
    days = sorted(jobs)
    if client is None:
        for day in days:
            yield _date_task(day, list(jobs[day]), _subset(geometries, jobs[day]), **kwargs)
        return
    given = options.credential_fields()
    if given:
        raise ArgumentError(f"reader options hold {', '.join(given)}: credentials never travel with a task;"
                            " give them to the Dask workers through their own AWS chain (AWS_* environment,"
                            " profile, instance role)")
    futures = {day: client.submit(_date_task, day, list(jobs[day]), _subset(geometries, jobs[day]), **kwargs,
                                  key=f"rasteret-ndvi-{day}-{uuid.uuid4().hex[:12]}", pure=False)
               for day in days}
    for day in days:  # date order, so a run's metadata reads the same whichever worker was first
        yield futures[day].result()


def _date_task(day: str, aois: list[str], geometries: Mapping[str, BaseGeometry], *, collection_root: str,
               storage_options: dict[str, Any] | None, **kwargs: Any) -> DateNdvi:
    """One date's NDVI where the task runs; each mosaic replaced by its preview."""
    collection = Collection.open(collection_root, storage_options=storage_options)
    result = ndvi_for_date(collection, day, aois, geometries, storage_options=storage_options, **kwargs)
    for aoi, item in result.aois.items():
        if item.raster is not None:
            label = kwargs["bands"].name  # the index the date holds (NDVI unless configured)
            result.aois[aoi] = replace(item, preview=raster_preview_png(item.raster, aoi, day, label=label),
                                       raster=None)
    return result


def _subset(geometries: Mapping[str, BaseGeometry], names: Sequence[str]) -> dict[str, BaseGeometry]:
    """Only the geometries a date needs travel with its task."""
    return {name: geometries[name] for name in names if name in geometries}
