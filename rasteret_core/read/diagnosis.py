"""What a read asked for, what each step found, and why a result is empty or partial.

Every high-level read (:meth:`rasteret_core.Rasteret.read` and the queries built on it)
produces a :class:`ReadDiagnosis`. The rule for callers:

- every read failed (connection refused, 403, corrupt tiles, no usable header):
  :class:`ReadError`, carrying the diagnosis and naming the first causes;
- some reads failed: a :class:`PartialReadWarning` with the first causes, and the rest of
  the result;
- nothing to read (no scene on these dates, the cloud filter removed them all, no scene
  overlaps the geometries): an empty result and an :class:`EmptyResultWarning` saying which
  step emptied it (a stacked Dataset, which cannot be empty, raises :class:`EmptyResultError`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rasteret_core.cog import ReadStats
from rasteret_core.errors import EmptyResultWarning, MissingBandWarning, PartialReadWarning, ReadError
from rasteret_core.read.aoi import ReadFailure

FIRST_CAUSES = 3
"""How many distinct causes messages quote."""


@dataclass
class ReadDiagnosis:
    """One read from a collection, step by step.

    Attributes:
        collection: the collection's name.
        geometries: the geometry ids asked for.
        bands: the band codes asked for.
        date_range, cloud_cover_lt, crs: the query's filters (``None`` when not given).
        stored_dates: how many dates the collection stores (all of them).
        scenes_per_date: scenes of the collection on each date of ``date_range``.
        after_cloud_filter: of those, scenes passing ``cloud_cover_lt`` (per date).
        overlapping: of those, scenes whose footprint meets the geometries (per date): what
            was read. ``scenes_per_date`` and ``after_cloud_filter`` are counted only when
            ``overlapping`` is empty (counting them costs extra partition reads); otherwise
            they are ``None``.
        windows: (scene, band, geometry) windows planned.
        rasters: windows read successfully.
        failures: every failed scene/band/geometry with its cause.
        missing_bands: requested bands that none of the overlapping scenes stores.
        hint: advice on a likely input mistake (swapped axes), when one was detected.
        endpoint: the S3-compatible endpoint s3:// URLs were read from (``None``: AWS).
        stats: requests, bytes and tiles of the read.
    """

    collection: str
    geometries: list[str]
    bands: list[str]
    date_range: tuple[Any, Any] | None = None
    cloud_cover_lt: float | None = None
    crs: str | None = None
    stored_dates: int = 0
    scenes_per_date: dict[str, int] | None = None
    after_cloud_filter: dict[str, int] | None = None
    overlapping: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    rasters: int = 0
    failures: list[ReadFailure] = field(default_factory=list)
    missing_bands: list[str] = field(default_factory=list)
    hint: str | None = None
    endpoint: str | None = None
    stats: ReadStats = field(default_factory=ReadStats)

    # --- the verdict -------------------------------------------------------------------
    @property
    def empty_step(self) -> str | None:
        """Which step emptied the result: ``dates``, ``cloud_cover``, ``overlap``,
        ``windows`` or ``reads``; ``None`` when something was read."""
        if self.rasters:
            return None
        if not sum(self.overlapping.values()):
            if self.scenes_per_date is not None and not sum(self.scenes_per_date.values()):
                return "dates"
            if self.after_cloud_filter is not None and not sum(self.after_cloud_filter.values()):
                return "cloud_cover"
            return "overlap"
        if self.failures:
            return "reads"
        return "windows"

    @property
    def all_failed(self) -> bool:
        """Nothing was read and at least one read failed."""
        return self.rasters == 0 and bool(self.failures)

    def first_causes(self, limit: int = FIRST_CAUSES) -> list[str]:
        """The most frequent distinct causes (URLs aside), each with one example and its count."""
        return first_causes(self.failures, limit)

    def _where_s3_goes(self) -> str:
        if not any(f.error.startswith("s3://") for f in self.failures):
            return ""
        return "; " + s3_target(self.endpoint)

    @property
    def reason(self) -> str:
        """In words, why the result is empty, or what was read."""
        step = self.empty_step
        dates = _describe_range(self.date_range)
        if step is None:
            text = (f"read {self.rasters} window(s) of {sum(self.overlapping.values())} scene(s) on"
                    f" {len(self.overlapping)} date(s)")
            if self.failures:
                text += f"; {len(self.failures)} failed: " + "; ".join(self.first_causes())
            return text
        if step == "dates":
            return (f"no scene in collection {self.collection!r} {dates}"
                    f" (it stores {self.stored_dates} date(s)); widen date_range or add dates to the collection")
        if step == "cloud_cover":
            total = sum(self.scenes_per_date.values()) if self.scenes_per_date else 0
            return (f"the cloud filter removed every scene: {total} scene(s) {dates}, none with"
                    f" cloud cover < {self.cloud_cover_lt:g}% (scenes without a cloud cover are left out too)")
        if step == "overlap":
            kept = sum(self.after_cloud_filter.values()) if self.after_cloud_filter else 0
            text = (f"no scene overlaps the geometries: {kept} scene(s) {dates} after the filters, none"
                    f" meeting {', '.join(map(repr, self.geometries[:5]))}")
            return f"{text}; {self.hint}" if self.hint else text
        if step == "reads":
            return (f"all {len(self.failures)} read(s) failed, first causes: " + "; ".join(self.first_causes())
                    + self._where_s3_goes())
        return (f"{sum(self.overlapping.values())} scene footprint(s) meet the geometries but no image pixel"
                " centre falls inside them (geometries smaller than a pixel, or at the image edge)")

    def raise_or_warn(self, *, stacklevel: int = 3) -> None:
        """Apply the rule of this module: raise when every read failed, warn when some did,
        warn on bands no scene stores and on an empty result."""
        if self.all_failed:
            raise ReadError(self.reason, self)
        for band in self.missing_bands:
            warnings.warn(MissingBandWarning(
                f"band {band!r} is stored for none of the {sum(self.overlapping.values())} scene(s) read"
                f" from {self.collection!r} (its headers failed at harvest or the items have no such asset)"
            ), stacklevel=stacklevel)
        if self.failures:
            warnings.warn(PartialReadWarning(
                f"{len(self.failures)} of {self.windows + _unplanned(self)} read(s) failed, first causes: "
                + "; ".join(self.first_causes()) + " (all in .last_read.failures)"
            ), stacklevel=stacklevel)
        elif self.empty_step is not None:
            warnings.warn(EmptyResultWarning(f"empty result: {self.reason}"), stacklevel=stacklevel)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for logs and metadata."""
        return {
            "collection": self.collection, "geometries": list(self.geometries), "bands": list(self.bands),
            "date_range": [str(v) for v in self.date_range] if self.date_range else None,
            "cloud_cover_lt": self.cloud_cover_lt, "scenes_per_date": self.scenes_per_date,
            "after_cloud_filter": self.after_cloud_filter, "overlapping": dict(self.overlapping),
            "windows": self.windows, "rasters": self.rasters, "failures": len(self.failures),
            "missing_bands": list(self.missing_bands), "empty_step": self.empty_step, "reason": self.reason,
            **{f"stats_{k}": v for k, v in self.stats.as_dict().items()},
        }

    def __repr__(self) -> str:
        return (
            f"ReadDiagnosis(collection={self.collection!r}, geometries={len(self.geometries)}, bands={self.bands},"
            f" scenes={sum(self.overlapping.values())}, windows={self.windows}, rasters={self.rasters},"
            f" failures={len(self.failures)}, requests={self.stats.requests}, bytes={self.stats.bytes_fetched},"
            f" empty_step={self.empty_step!r})"
        )

    def __str__(self) -> str:
        return self.reason


def first_causes(failures: list[Any], limit: int = FIRST_CAUSES) -> list[str]:
    """The most frequent distinct causes of ``failures`` (objects with ``scene_id``, ``band``
    and ``error``; the URL at the head of an error is set aside so causes group across
    files), each with its count and one example."""
    counts = Counter(_cause(f.error) for f in failures)
    example: dict[str, Any] = {}
    for f in failures:
        example.setdefault(_cause(f.error), f)
    out = []
    for cause, n in counts.most_common(limit):
        f = example[cause]
        where = f.error[: -len(cause)].rstrip(": ") if f.error.endswith(cause) and f.error != cause else ""
        seen = f"{n} read(s), e.g. {f.scene_id} {f.band}" + (f" at {where}" if where else "")
        out.append(f"{cause} ({seen})")
    return out


def s3_target(endpoint: str | None) -> str:
    """Where s3:// URLs were read from, in words, for failure messages."""
    return f"s3:// URLs were read from {endpoint or 'AWS S3 (no endpoint_url given and AWS_ENDPOINT_URL unset)'}"


class GeometryDatasets(dict):
    """``{geometry id: xarray.Dataset}`` (a plain dict) that also carries its :attr:`diagnosis`."""

    def __init__(self, datasets: dict[str, Any], diagnosis: ReadDiagnosis) -> None:
        super().__init__(datasets)
        self.diagnosis = diagnosis

    def __repr__(self) -> str:
        if not self:
            return f"GeometryDatasets(empty: {self.diagnosis.reason})"
        parts = ", ".join(f"{k!r}: {dict(ds.sizes)}" for k, ds in self.items())
        return f"GeometryDatasets({{{parts}}}, failures={len(self.diagnosis.failures)})"


def _cause(error: str) -> str:
    """The reason part of a reader error (``"<url>: <reason>"``), so causes group across files."""
    head, sep, rest = error.partition(": ")
    return rest if sep and "://" in head or sep and head.startswith("/") else error


def _unplanned(diagnosis: ReadDiagnosis) -> int:
    """Failures found before planning (no header for a band), which were not windows."""
    return sum(1 for f in diagnosis.failures if f.geometry_id is None)


def _describe_range(date_range: tuple[Any, Any] | None) -> str:
    if not date_range:
        return "on any date"
    start, end = (str(v)[:10] for v in date_range)
    return f"on {start}" if start == end else f"between {start} and {end}"
