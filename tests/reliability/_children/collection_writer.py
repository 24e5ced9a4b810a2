"""A process that refreshes a shared collection when told to: the other writer in the
concurrency tests. Runs in its own interpreter (multiprocessing "spawn")."""

from __future__ import annotations


def serve(jobs, results, barrier) -> None:
    """Take ``(root, storage_options, items, bands, header)`` jobs; wait at ``barrier`` so both
    writers start together, then merge the items with those bands into the date's partition."""
    from rasteret_core.collection import Collection
    from tests.helpers.scenes import DAY, scene

    while True:
        job = jobs.get()
        if job is None:
            return
        root, options, items, bands, header = job
        coll = Collection.open(root, storage_options=options)
        barrier.wait()
        try:
            coll.merge_date(DAY, [scene(i, bands, header) for i in items], read_bands=bands)
            results.put(("ok", bands))
        except Exception as exc:  # reported to the test, which fails with it
            results.put(("error", f"{type(exc).__name__}: {exc}"))


def refresh_forever(root: str, header, confirmed) -> None:
    """Refresh band after band in a loop, reporting each finished write, until killed."""
    from rasteret_core.collection import Collection
    from tests.helpers.scenes import DAY, scene

    coll = Collection.open(root)
    bands = ["B08", "SCL", "B11", "B12"]
    n = 0
    while True:
        band = bands[n % len(bands)]
        coll.merge_date(DAY, [scene(i, [band], header) for i in ("a", "b", "c")], read_bands=[band])
        confirmed.put(band)
        n += 1
