"""The NDVI product of one date for a set of AOIs: the call a scheduler makes per date.

:func:`ndvi_for_date` reads the date's scenes once for all the AOIs (AOIs on the same scene
share tiles), writes one NDVI COG and its sidecar per AOI, and returns per AOI what was
written, what failed and why, next to the read's plan and counts. It never deletes or thins
stored outputs because an input vanished (an empty search, a deleted date, pruned scenes):
it keeps them and says why (:attr:`AoiNdvi.kept`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.names import path_under
from rasteret_core.plan import plan_aoi_read, ReadPlan
from rasteret_core.products.indices import aoi_index, spectral_index
from rasteret_core.products.ndvi import aoi_ndvi, NdviRaster
from rasteret_core.products.outputs import read_ndvi_sidecar, read_output, write_ndvi_output
from rasteret_core.read.aoi import ReadFailure
from rasteret_core.storage import delete_missing, list_files


@dataclass(frozen=True)
class NdviBands:
    """The band codes NDVI reads: red, near infrared and the cloud mask (``SCL`` or ``QA_PIXEL``).

    ``index``: the index the date's outputs hold, NDVI by default; any other name of the
    Awesome Spectral Indices catalogue (:mod:`rasteret_core.products.indices`) reads the bands
    that index needs (mapped from the collection's data source) with the same cloud mask.
    """

    red: str
    nir: str
    mask: str
    index: str = "NDVI"

    @property
    def is_ndvi(self) -> bool:
        return self.index.upper() == "NDVI"

    @property
    def name(self) -> str:
        """The index's catalogue name (``"savi"`` -> ``"SAVI"``); an ``ArgumentError`` for an
        unknown one. What labels, tags and UI metadata show: never the raw setting."""
        return "NDVI" if self.is_ndvi else spectral_index(self.index).name

    def read_codes(self, source: Any) -> list[str]:
        """The band codes the date's read needs from ``source`` (a DataSource) for ``index``."""
        if self.is_ndvi:
            return self.codes
        return list(dict.fromkeys([*spectral_index(self.index).source_bands(source).values(), self.mask]))

    @property
    def mask_kind(self) -> str:
        return "scl" if self.mask == "SCL" else "qa_pixel"

    @property
    def codes(self) -> list[str]:
        return [self.red, self.nir, self.mask]


@dataclass
class AoiNdvi:
    """One AOI's NDVI on one date.

    ``outputs`` describes each COG written (path, scene ids, dtype, CRS, pixel size, value
    range), re-read as a consumer would; ``raster`` the mosaic written (or, from
    :func:`~rasteret_core.products.ndvi_runs.ndvi_for_dates`, ``preview``: its PNG map instead);
    ``failures`` are ``(scene, band, reason)`` rows; ``read_failures`` the failed reads
    themselves. ``kept`` says why stored outputs were kept rather than replaced (None when they
    were replaced or there were none).
    """

    aoi: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    raster: NdviRaster | None = None
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    read_failures: list[ReadFailure] = field(default_factory=list)
    kept: str | None = None
    known: bool = True
    preview: bytes | None = None

    @property
    def all_reads_failed(self) -> bool:
        """Every read this AOI needed failed, so nothing could be written."""
        return bool(self.read_failures) and not self.outputs and self.kept is None


@dataclass
class DateNdvi:
    """One date's NDVI for a set of AOIs: each AOI's result, the plan and the shared read."""

    date: str
    scenes: int
    aois: dict[str, AoiNdvi]
    stats: ReadStats
    plan: ReadPlan
    failures: list[ReadFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tile_failures(self) -> list[tuple[str, str, str]]:
        """Tile reads that failed now (a header that failed at harvest was reported then)."""
        return [(f.scene_id, f.band, f.error) for f in self.failures if f.geometry_id]


def ndvi_folder(root: str, aoi: str, date: str) -> str:
    """Where one AOI's NDVI of one date is stored: ``<root>/<aoi>/<date>``, path-safe."""
    return path_under(root, aoi, date)


def ndvi_for_date(
    collection: Any,
    date: str,
    aois: Iterable[str],
    geometries: Mapping[str, BaseGeometry],
    *,
    bands: NdviBands,
    out_root: str,
    reader_options: ReaderOptions | None = None,
    storage_options: dict[str, Any] | None = None,
    output_reader_options: dict[str, Any] | None = None,
) -> DateNdvi:
    """NDVI of ``date`` for each of ``aois``: one read of the date's scenes, one COG per AOI.

    ``collection`` is a :class:`~rasteret_core.collection.Collection`; ``geometries`` the AOI
    polygons by name (an AOI missing from it is reported, its stored outputs untouched). All
    the date's scenes make one mosaic per AOI (least cloud first, first valid pixel wins).
    Outputs go to :func:`ndvi_folder` under ``out_root``; a date whose outputs are replaced
    loses the files the new result does not hold, unless an input vanished (see :class:`AoiNdvi`).
    ``output_reader_options`` are the reader options for reading the written COGs back.
    """
    names = list(aois)
    source = getattr(collection, "data_source", None)
    codes = bands.read_codes(source)
    scenes = collection.scenes(date_range=(date, date), bands=codes)
    day_ids = {scene.id for scene in scenes}
    known = {a: geometries[a] for a in names if a in geometries}
    plan = ReadPlan("ndvi")
    if known:  # what this read will request and cost, from the stored headers
        plan.add(plan_aoi_read(scenes, known, codes, reader_options=reader_options))
    stats = ReadStats()
    # the date is the time step (groupby=None): all its scenes make one mosaic
    if bands.is_ndvi:
        result = aoi_ndvi(scenes if known else [], known, red=bands.red, nir=bands.nir, mask=bands.mask,
                          mask_kind=bands.mask_kind, reader_options=reader_options, stats=stats, groupby=None)
    else:
        result = aoi_index(scenes if known else [], known, bands.index, source, mask=bands.mask,
                           mask_kind=bands.mask_kind, reader_options=reader_options, stats=stats, groupby=None)
    out = DateNdvi(date, len(scenes), {}, stats, plan, list(result.failures), list(result.warnings))
    for aoi in names:
        mine = [f for f in result.failures if f.geometry_id in (aoi, None)]
        rasters = [r for r in result.rasters if r.geometry_id == aoi]
        item = AoiNdvi(aoi, read_failures=mine, failures=[(f.scene_id, f.band, f.error) for f in mine],
                       known=aoi in known)
        out.aois[aoi] = item
        folder = ndvi_folder(out_root, aoi, date)
        if not item.known:
            item.failures.append(("-", "-", f"AOI {aoi!r} is not in the AOI source any more"))
            continue
        if mine and not rasters:
            continue  # every read failed: nothing written, nothing deleted
        item.kept = _vanished_inputs(folder, rasters, day_ids, storage_options)
        if item.kept:
            continue
        written = []
        for raster in rasters:  # at most one: the date x AOI mosaic
            path = write_ndvi_output(raster, folder, storage_options=storage_options,
                                     tags=_provenance(collection, date, bands, codes, scenes, raster.scene_ids))
            written += [path, path[: -len(".tif")] + ".json"]
            item.outputs.append(_describe_output(path, raster.scene_id, output_reader_options or {}))
            item.raster = raster
        delete_missing(folder, written, storage_options=storage_options)  # a refresh replaces the date
    return out


def _provenance(collection: Any, date: str, bands: NdviBands, codes: list[str], scenes: list,
                used: list[str]) -> dict[str, str]:
    """What an output COG is made of, as its tags: the index and its formula, the date, the
    source, the bands and each scene's radiometry rule (DN -> reflectance) as decided at harvest."""
    source = getattr(collection, "data_source", None)
    data = [c for c in codes if c != bands.mask]
    rules = sorted({f"{band} {s.bands[band].rule}" for s in scenes if s.id in set(used)
                    for band in data if s.bands.get(band) is not None and s.bands[band].rule})
    tags = {"date": date, "source": getattr(source, "name", "") or "", "radiometry": "; ".join(rules)}
    if bands.is_ndvi:
        return {**tags, "bands": f"red={bands.red} nir={bands.nir} mask={bands.mask}"}
    spec = spectral_index(bands.index)
    mapping = spec.source_bands(source)
    return {**tags, **spec.tags(),
            "bands": " ".join(f"{std}={code}" for std, code in mapping.items()) + f" mask={bands.mask}"}


def _vanished_inputs(folder: str, rasters: list, day_ids: set[str], storage_options: dict[str, Any] | None) -> str | None:
    """Why the stored outputs of ``folder`` must be kept rather than replaced by ``rasters``, or
    None: the date's collection partition is empty or gone while outputs exist, or it no longer
    holds scenes the stored mosaic was made from (its sidecar names them)."""
    stored = list_files(folder, suffix=".tif", storage_options=storage_options)
    if not stored:
        return None
    used = (read_ndvi_sidecar(folder, storage_options=storage_options) or {}).get("scene_ids") or []
    gone = sorted({str(i) for i in used} - day_ids)
    if gone:
        return (f"{len(stored)} output(s) kept, made from {len(used)} scene(s) of which {len(gone)} the collection"
                f" no longer holds ({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''})")
    if not rasters and not day_ids:
        return f"{len(stored)} output(s) kept; the collection holds no scene on this date"
    return None


def _describe_output(path: str, scene_id: str, reader_options: dict[str, Any]) -> dict[str, Any]:
    """Re-read a written NDVI COG through the core reader, as any consumer would."""
    header, values = read_output(path, **reader_options)
    finite = values[np.isfinite(values)]
    return {
        "path": path, "scene_id": scene_id, "dtype": header.dtype.name,
        "crs": f"EPSG:{header.crs_epsg}" if header.crs_epsg else "",
        "pixel_width": float(header.transform[0]), "pixel_height": float(header.transform[4]),
        "nodata_is_nan": header.nodata is not None and bool(np.isnan(header.nodata)),
        "min": float(finite.min()) if finite.size else None, "max": float(finite.max()) if finite.size else None,
    }
