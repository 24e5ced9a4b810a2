"""The high-level API: build a collection once, then query it for AOI time series.

    from rasteret_core import Rasteret, DataSources
    r = Rasteret("bangalore", DataSources.SENTINEL2, ("2024-01-01", "2024-03-31"))
    r.create_collection(bbox=(77.5, 12.9, 77.7, 13.1), cloud_cover_lt=30)
    ds = r.get_xarray(geometries=[aoi1, aoi2], bands=["B04", "B08"])
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from rasteret_core.cog import ReaderOptions, ReadStats
from rasteret_core.cog.urls import s3_endpoint_from_env
from rasteret_core.collection import build_collection, Collection
from rasteret_core.collection.build import BuildReport
from rasteret_core.collection.harvest import collection_reader_options, reader_options_for
from rasteret_core.errors import (
    ArgumentError, EmptyResultError, EmptyResultWarning, RadiometryWarning, RasteretError,
)
from rasteret_core.load import load, process_stats
from rasteret_core.products.indices import aoi_index, cloud_mask_band, spectral_index
from rasteret_core.products.ndvi import NdviResult
from rasteret_core.plan import plan_aoi_read, plan_load, plan_point_samples, Prices, ReadPlan
from rasteret_core.raster.geometry import check_lonlat, named_geometries, swap_axes, union_bounds
from rasteret_core.raster.masks import MASK_BANDS
from rasteret_core.read.aoi import AoiReadResult, read_aois, recording
from rasteret_core.read.diagnosis import GeometryDatasets, ReadDiagnosis
from rasteret_core.read.points import named_points, PointSamples, sample_points
from rasteret_core.read.xarray import per_geometry_datasets, stack_datasets
from rasteret_core.types import band_list, Bands, BBox, DateRange
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.workspace import collection_name, collection_root, list_collections, load_collection


_log = logging.getLogger(__name__)


class Rasteret:
    """A named collection in a workspace, and the queries over it.

    ``custom_name`` plus the date range and source name the collection
    (``bangalore_202401-03_sentinel``); ``workspace_dir`` defaults to ``$RASTERET_WORKSPACE``
    or ``~/rasteret_workspace``. Queries never modify the stored collection. After every call,
    ``last_stats`` holds its request and byte counts and ``last_read`` the read's diagnosis.

    Args:
        custom_name: the first part of the collection's name (letters, digits, ``_-.``).
        data_source: a :class:`DataSource` or a registered name (``"sentinel-2"``, ``"landsat"``).
        date_range: inclusive ``(start, end)`` dates the collection covers.
        workspace_dir: the workspace folder or ``s3://`` prefix.
        reader_options: :class:`~rasteret_core.cog.ReaderOptions` or its fields as a dict
            (``endpoint_url``, ``retries``, credentials, ...).
        progress: show progress bars (in a terminal) or progress log lines.

    Raises:
        ValueError: an invalid name, date range or unknown data source.
    """

    def __init__(
        self,
        custom_name: str,
        data_source: DataSource | str,
        date_range: tuple[Any, Any],
        workspace_dir: str | os.PathLike[str] | None = None,
        *,
        reader_options: ReaderOptions | dict[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        source = DataSources.get(data_source)
        name = collection_name(custom_name, date_range, source)
        self._init_state(name, source, date_range, workspace_dir, collection_root(name, workspace_dir),
                         reader_options=reader_options, progress=progress)

    def _init_state(self, name: str, data_source: DataSource, date_range: DateRange | None,
                    workspace_dir: str | os.PathLike[str] | None, root: str, *,
                    reader_options: ReaderOptions | dict[str, Any] | None = None, progress: bool = True,
                    collection: Collection | None = None) -> None:
        """Every attribute of an instance, however it was made (named or opened)."""
        self.data_source = data_source
        self.date_range = date_range
        self.workspace_dir = workspace_dir
        self.name = name
        self.root = root
        self.reader_options = reader_options
        self.progress = progress
        self._load_baseline: dict[str, int] | None = None
        self.last_stats = ReadStats()
        self.last_read: ReadDiagnosis | None = None
        self.last_warnings: list[str] = []
        self._collection = collection

    # --- building ------------------------------------------------------------------------
    def create_collection(
        self,
        bbox: BBox | None = None,
        cloud_cover_lt: float | None = None,
        platform: Any = None,
        *,
        bands: str | list[str] | None = None,
        intersects: Any = None,
        max_items: int | None = None,
        overwrite: bool = False,
        refresh: bool = False,
        prune: bool = False,
    ) -> BuildReport:
        """Search the source, read every band's COG header once, write the collection.

        Args:
            bbox: lon/lat search box ``(west, south, east, north)``.
            cloud_cover_lt: keep items with cloud cover strictly below this (%).
            platform: STAC ``platform`` value(s) to keep.
            bands: band codes to harvest (default: every band of the source).
            intersects: a search geometry instead of ``bbox``.
            max_items: stop the search after this many items.
            overwrite: replace an existing collection of this name.
            refresh: keep an existing collection and merge what this search reads into it: bands
                not asked for keep their headers, items the search no longer returns are kept.
            prune: with ``refresh``, remove the items of the searched dates that the search no
                longer returns (``report.pruned`` lists them).

        Returns:
            A :class:`BuildReport`; ``report.message`` says what was written, or why nothing.

        Raises:
            CollectionExistsError: the collection exists and neither ``overwrite`` nor
                ``refresh`` was given.
            BuildError: every COG header failed (first causes in the message); nothing written.
            StacSearchError: the STAC API could not be searched.
        """
        if overwrite and refresh:
            raise ArgumentError("overwrite=True replaces the collection and refresh=True keeps it: choose one")
        report = build_collection(
            self.data_source, root=self.root, date_range=self.date_range, bbox=bbox, intersects=intersects,
            cloud_cover_lt=cloud_cover_lt, platform=platform, bands=band_list(bands) if bands is not None else None,
            max_items=max_items, reader_options=reader_options_for(self.data_source, self.reader_options),
            progress=self.progress, name=self.name,
            if_exists="overwrite" if overwrite else "refresh" if refresh else "error", prune=prune,
        )
        self.last_stats = report.stats
        self._collection = report.collection
        if report.empty:
            warnings.warn(EmptyResultWarning(report.message), stacklevel=2)
        return report

    @staticmethod
    def list_collections(workspace_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
        """Collections in the workspace that hold at least one date.

        Returns:
            One dict per collection: ``name``, ``data_source``, ``date_range``, ``size``
            (scenes), ``bands``, ``root``; sorted by name.
        """
        return list_collections(workspace_dir)

    @classmethod
    def load_collection(cls, name: str, workspace_dir: str | os.PathLike[str] | None = None) -> "Rasteret":
        """Open an existing collection by its full name (as ``list_collections`` shows it).

        Raises:
            ValueError: the workspace has no collection of that name (the message lists them).
        """
        collection = load_collection(name, workspace_dir)
        dates = collection.dates()
        opened = cls.__new__(cls)  # an existing collection keeps its stored name: no naming step
        opened._init_state(collection.name or name, collection.data_source or DataSources.SENTINEL2,
                           (dates[0], dates[-1]) if dates else None, workspace_dir, collection.root,
                           collection=collection)
        return opened

    @property
    def last_stats(self) -> ReadStats:
        """The request and byte counts of the last call. After :meth:`load`, what this process
        fetched for lazy loads since it was built (counted as the Dataset is computed, on the
        threaded or synchronous scheduler; a distributed cluster's workers count their own)."""
        if self._load_baseline is None:
            return self._last_stats
        now = process_stats()
        return ReadStats(**{name: now.get(name, 0) - self._load_baseline.get(name, 0)
                            for name in ReadStats().as_dict()})

    @last_stats.setter
    def last_stats(self, value: ReadStats) -> None:
        self._last_stats, self._load_baseline = value, None

    @property
    def collection(self) -> Collection:
        """The stored :class:`Collection`.

        Raises:
            RasteretError: it has not been built yet.
        """
        if self._collection is None:
            try:
                self._collection = load_collection(self.name, self.workspace_dir)
            except ValueError:
                raise RasteretError(f"collection {self.name!r} does not exist yet: call create_collection first") from None
        return self._collection

    # --- queries -------------------------------------------------------------------------
    def read(self, geometries: Any, bands: str | list[str], cloud_cover_lt: float | None = None,
             date_range: tuple[Any, Any] | None = None, *, crs: str | None = None) -> AoiReadResult:
        """Clipped rasters per geometry, scene and band (the form the other queries build on).

        Args:
            geometries: polygons, see :func:`~rasteret_core.raster.geometry.named_geometries`
                for the accepted forms and how each geometry gets its id.
            bands: band codes (``["B04", "B08"]``, or one code as a string).
            cloud_cover_lt: keep scenes with a known cloud cover strictly below this (%).
            date_range: inclusive ``(start, end)`` UTC dates; default: every stored date.
            crs: the CRS of the geometries' coordinates (default EPSG:4326 lon/lat).

        Returns:
            An :class:`AoiReadResult`; its ``diagnosis`` (also ``self.last_read``) says what
            each step found.

        Raises:
            GeometryError: invalid geometries, or coordinates outside lon/lat without ``crs=``.
            ValueError: a band code the collection does not store.
            ReadError: every read failed (the message names the first causes).

        Warns:
            PartialReadWarning: some reads failed. MissingBandWarning: a band no scene
            stores. EmptyResultWarning: nothing to read (the step that emptied it).
        """
        result = self._read(geometries, bands, cloud_cover_lt, date_range, crs)
        result.diagnosis.raise_or_warn()
        return result

    def _read(self, geometries: Any, bands: Any, cloud_cover_lt: float | None, date_range: Any,
              crs: str | None, *, fill_outside: bool = True) -> AoiReadResult:
        bands = band_list(bands)
        geoms, stream = self._aoi_scenes(geometries, bands, cloud_cover_lt, date_range, crs, stream=True)
        scenes, stream = recording(stream)  # the scan streams into the read: the first tiles are fetched meanwhile
        stats = ReadStats()
        options = self._options()
        result = read_aois(stream, geoms, bands, reader_options=options, stats=stats, progress=self.progress,
                           fill_outside=fill_outside)
        bbox = union_bounds(geoms.values())
        collection = self.collection
        diagnosis = ReadDiagnosis(
            collection.name, list(geoms), bands, date_range=date_range, cloud_cover_lt=cloud_cover_lt, crs=crs,
            stored_dates=len(collection.dates()), overlapping=_per_date(scenes),
        )
        if not scenes:
            _diagnose_no_scene(diagnosis, collection, geoms, bbox)
        else:
            diagnosis.missing_bands = [b for b in bands if not any(b in s.bands for s in scenes)]
        diagnosis.endpoint = options.endpoint_url or s3_endpoint_from_env()
        result.scenes, result.geometries = scenes, geoms
        diagnosis.rasters = len(result.rasters)
        diagnosis.windows = diagnosis.rasters + sum(1 for f in result.failures if f.geometry_id is not None)
        diagnosis.failures = [f for f in result.failures if f.band not in diagnosis.missing_bands]
        diagnosis.stats = stats
        result.diagnosis = diagnosis
        self.last_stats = stats
        self.last_read = diagnosis
        return result

    def get_xarray(self, geometries: Any, bands: str | list[str], cloud_cover_lt: float | None = None,
                   date_range: tuple[Any, Any] | None = None, *, per_geometry: bool = False, crs: str | None = None,
                   reflectance: bool = False, mask_clouds: bool = False, groupby: Any = "solar_day",
                   allow_sparse: bool = False):
        """Pixels as xarray: one variable per band, one time step per solar day.

        Default: one Dataset with dims (geometry, time, y, x) on the geometries' union grid,
        refused with advice when they are in different CRSs or far apart (``allow_sparse=True``
        stacks far-apart geometries anyway, on their mostly empty union grid). With
        ``per_geometry=True``: ``{geometry id: Dataset(time, y, x)}`` (a
        :class:`GeometryDatasets`, a dict that also carries the ``diagnosis``), each on its
        own grid. Pixels outside a geometry hold the band's nodata (``rasterio.mask``
        semantics). Arguments as for :meth:`read`, and:

        - ``groupby``: the scenes of one solar day are one mosaic (odc-stac's
          ``groupby="solar_day"``; ``"time"`` keeps acquisitions apart): least cloud first,
          first valid pixel wins, on the grid of the CRS covering most of the geometry, masks
          brought onto it before the clip (see :mod:`rasteret_core.read.mosaic`).
        - ``reflectance=True``: float32 physical values (NaN = nodata) by each scene's stored
          radiometry rule. Raw reads carry CF ``scale_factor``/``add_offset``/``_FillValue``
          so ``xr.decode_cf`` gives the same values.
        - ``mask_clouds=True`` (needs ``SCL`` or ``QA_PIXEL`` in ``bands``): cloud-masked pixels
          are not valid, so another scene of the day can fill them.

        Radiometry warnings (many negative reflectances: the metadata is probably wrong) are
        logged, issued as :class:`~rasteret_core.errors.RadiometryWarning` and kept in
        ``last_warnings``; values are never changed.

        Raises:
            EmptyResultError: the stacked form had nothing to hold (the message says which
                step emptied it); the per-geometry form returns an empty mapping and warns.
            ReadError, GeometryError, ValueError: as :meth:`read`.
        """

        mask = next((b for b in band_list(bands) if b in MASK_BANDS), None)
        if mask_clouds and mask is None:
            raise RasteretError(f"mask_clouds=True needs a cloud-mask band ({' or '.join(MASK_BANDS)}) in bands")
        result = self._read(geometries, bands, cloud_cover_lt, date_range, crs, fill_outside=False)
        diagnosis = result.diagnosis
        if not per_geometry and diagnosis.empty_step is not None and not diagnosis.all_failed:
            raise EmptyResultError(f"nothing to stack: {diagnosis.reason}", diagnosis)
        diagnosis.raise_or_warn()
        found: list[str] = []
        datasets = per_geometry_datasets(result.rasters, diagnosis.bands, result.scenes, result.geometries,
                                         groupby=groupby, physical=reflectance, mask=mask, mask_clouds=mask_clouds,
                                         warnings=found)
        self.last_warnings = found
        for text in found:
            _log.warning("%s", text)
            warnings.warn(text, RadiometryWarning, stacklevel=2)
        if per_geometry:
            return GeometryDatasets(datasets, diagnosis)
        return stack_datasets(datasets, allow_sparse=allow_sparse)

    def get_index(self, geometries: Any, index: str, cloud_cover_lt: float | None = None,
                  date_range: tuple[Any, Any] | None = None, *, mask_clouds: bool = True,
                  constants: dict[str, float] | None = None, crs: str | None = None) -> NdviResult:
        """A spectral index by name (``"EVI"``, ``"NDWI"``, ``"SAVI"``, ... from the Awesome Spectral
        Indices catalogue) per geometry and solar day, on reflectance, clouds masked.

        The index's standard bands are mapped to this collection's band codes through their STAC
        common names (:func:`~rasteret_core.products.indices.standard_bands`); each scene's
        radiometry rule is applied first. ``constants`` override the catalogue's defaults
        (``{"L": 0.5}``). ``mask_clouds``: mask with ``SCL`` / ``QA_PIXEL`` when stored.
        :func:`~rasteret_core.products.indices.index_table` turns the result into the time-series
        table. ``self.last_stats`` holds the read's requests and bytes.

        Raises:
            ArgumentError: an unknown index, or one needing a band this source lacks.
        """
        spec = spectral_index(index)
        codes = list(dict.fromkeys(spec.source_bands(self.data_source).values()))
        absent = [c for c in codes if c not in self.collection.bands]
        if absent:
            raise ArgumentError(f"{spec.name} needs band(s) {', '.join(absent)}, which collection "
                                f"{self.collection.name!r} does not store (it has {', '.join(self.collection.bands)});"
                                f" rebuild it with them")
        mask, kind = cloud_mask_band(self.collection.bands) if mask_clouds else (None, "scl")
        # the mask band is asked for too: scenes carry only the bands asked for
        geoms, scenes = self._aoi_scenes(geometries, codes + ([mask] if mask else []), cloud_cover_lt, date_range, crs,
                                         stream=True)
        stats = ReadStats()
        result = aoi_index(scenes, geoms, spec, self.data_source, mask=mask, mask_kind=kind, constants=constants,
                           reader_options=self._options(), stats=stats, progress=self.progress)
        self.last_stats = stats
        return result

    def load(self, bands: list[str] | str | None = None, **kwargs: Any):
        """A lazy, dask-backed ``Dataset(time, y, x)`` on one grid, in ``odc.stac.load``'s terms
        (``bbox``/``geometry``/``like``, ``crs``, ``resolution``, ``chunks``, ``groupby``, ...):
        see :func:`rasteret_core.load.load`. Uses this collection's reader options unless given."""

        given = kwargs.get("reader_options", self.reader_options)
        kwargs["reader_options"] = collection_reader_options(self.data_source, given, root=self.root)
        ds = load(self.collection, bands, **kwargs)
        self._load_baseline = process_stats()  # last_stats counts what computing it fetches
        return ds

    def get_gdf(self, geometries: Any, bands: str | list[str], cloud_cover_lt: float | None = None,
                date_range: tuple[Any, Any] | None = None, *, crs: str | None = None):
        """A GeoDataFrame with one row per geometry x scene x band.

        Columns: ``geometry_id``, ``scene_id``, ``datetime``, ``band``, ``data`` (the clipped
        array), ``transform``, ``crs``, ``nodata`` and ``geometry`` (EPSG:4326). Nothing to
        read gives an empty frame with these columns (and an ``EmptyResultWarning``).
        Arguments, raises and warnings as for :meth:`read`.
        """
        import geopandas as gpd

        geoms = named_geometries(geometries)
        source = {k: _to_lonlat(g, crs) for k, g in geoms.items()} if crs is not None else geoms
        result = self.read(geoms, bands, cloud_cover_lt, date_range, crs=crs)
        rows = [
            {
                "geometry_id": r.geometry_id, "scene_id": r.scene_id, "datetime": r.datetime, "band": r.band,
                "data": r.data, "transform": tuple(r.transform)[:6], "crs": r.crs,
                "nodata": r.nodata, "geometry": source[r.geometry_id],
            }
            for r in result.rasters
        ]
        if not rows:
            return gpd.GeoDataFrame({c: [] for c in GDF_COLUMNS}, geometry=gpd.GeoSeries([], crs="EPSG:4326"),
                                    crs="EPSG:4326")
        return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")

    def sample_points(self, points: Any, bands: list[str], date_range: tuple[Any, Any] | None = None,
                      cloud_cover_lt: float | None = None, *, max_distance: float | None = None,
                      neighbourhood: int = 1, physical: bool = False, crs: str | None = None) -> PointSamples:
        """Band values at points for every scene in ``date_range``, with zero header requests.

        ``points``: a GeoDataFrame of points, ``{id: Point | (lon, lat)}`` or a list of them.
        ``max_distance`` picks the nearest valid pixel within that distance (image CRS units,
        metres for UTM); ``neighbourhood=k`` returns the ``k x k`` block around each point;
        ``physical`` applies the band's scale and offset. Returns :class:`PointSamples`
        (``.to_geodataframe()``, ``.to_arrow()``); see :func:`rasteret_core.read.points.sample_points`.
        """
        bands = band_list(bands)
        named, scenes = self._point_scenes(points, bands, date_range, cloud_cover_lt, max_distance, crs)
        if not scenes and crs is None:
            swapped = {k: (lat, lon) for k, (lon, lat) in named.items() if abs(lon) <= 90}
            if swapped and self._point_scenes(swapped, bands, date_range, cloud_cover_lt, max_distance, None)[1]:
                warnings.warn(EmptyResultWarning(
                    f"no scene of {self.name!r} overlaps the {len(named)} point(s); with x and y swapped they"
                    " would: give points as (longitude, latitude), x first"), stacklevel=2)
        stats = ReadStats()
        result = sample_points(scenes, named, bands, max_distance=max_distance, neighbourhood=neighbourhood,
                               physical=physical, reader_options=self._options(), stats=stats)
        self.last_stats = stats
        return result

    # --- plans: what each query will request and cost, without fetching a pixel -------------
    def plan_read(self, geometries: Any, bands: Bands, cloud_cover_lt: float | None = None,
                  date_range: DateRange | None = None, *, crs: str | None = None, read: str = "get_xarray",
                  reader_region: str | None = None, prices: Prices | None = None, **_: Any) -> ReadPlan:
        """The plan of :meth:`read`, :meth:`get_xarray` or :meth:`get_gdf` with these arguments
        (``read`` names which, for the report). ``reader_region`` is the AWS region the read runs
        in (``None``: outside AWS), ``prices`` the AWS prices (default: list prices, see
        :class:`~rasteret_core.plan.Prices`). The read then reports the same figures in
        ``last_stats``: ``plan.compare(r.last_stats)``."""
        bands = band_list(bands)
        geoms, scenes = self._aoi_scenes(geometries, bands, cloud_cover_lt, date_range, crs)
        return plan_aoi_read(scenes, geoms, bands, reader_options=self._options(), read=read,
                             reader_region=reader_region, prices=prices)

    def plan_sample_points(self, points: Any, bands: Bands, date_range: DateRange | None = None,
                           cloud_cover_lt: float | None = None, *, max_distance: float | None = None,
                           neighbourhood: int = 1, crs: str | None = None, reader_region: str | None = None,
                           prices: Prices | None = None, **_: Any) -> ReadPlan:
        """The plan of :meth:`sample_points` with these arguments (see :meth:`plan_read`)."""
        bands = band_list(bands)
        named, scenes = self._point_scenes(points, bands, date_range, cloud_cover_lt, max_distance, crs)
        return plan_point_samples(scenes, named, bands, max_distance=max_distance, neighbourhood=neighbourhood,
                                  reader_options=self._options(), reader_region=reader_region, prices=prices)

    def plan_load(self, bands: Bands | None = None, *, reader_region: str | None = None,
                  prices: Prices | None = None, **kwargs: Any) -> ReadPlan:
        """The plan of :meth:`load` with these arguments: every chunk task's tiles (see :meth:`plan_read`)."""
        return plan_load(self.load(bands, **kwargs), reader_region=reader_region, prices=prices)

    def plan(self, read: str = "get_xarray", *args: Any, **kwargs: Any) -> ReadPlan:
        """What a query will request and cost, without fetching a pixel: ``read`` names the query
        (``"get_xarray"``, ``"get_gdf"``, ``"read"``, ``"sample_points"`` or ``"load"``), the
        other arguments are that query's own (see :meth:`plan_read`, :meth:`plan_sample_points`,
        :meth:`plan_load`)."""
        if read in ("get_xarray", "get_gdf", "read"):
            return self.plan_read(*args, read=read, **kwargs)
        if read == "sample_points":
            return self.plan_sample_points(*args, **kwargs)
        if read == "load":
            return self.plan_load(*args, **kwargs)
        raise ArgumentError(f"cannot plan {read!r}: plan get_xarray, get_gdf, read, sample_points or load")

    def _aoi_scenes(self, geometries: Any, bands: list[str], cloud_cover_lt: float | None,
                    date_range: tuple[Any, Any] | None, crs: str | None, *, stream: bool = False):
        """The geometries (lon/lat, by id) and the scenes a geometry query reads (``stream``: as
        an iterator yielding them as the collection is scanned)."""
        bands = band_list(bands)
        geoms = named_geometries(geometries)
        if crs is not None:
            geoms = {k: _to_lonlat(g, crs) for k, g in geoms.items()}
        else:
            check_lonlat(geoms)
        bbox = union_bounds(geoms.values())
        query = self.collection.iter_scenes if stream else self.collection.scenes
        return geoms, query(date_range=date_range, cloud_cover_lt=cloud_cover_lt, bbox=bbox, bands=bands)

    def _point_scenes(self, points: Any, bands: list[str], date_range: tuple[Any, Any] | None,
                      cloud_cover_lt: float | None, max_distance: float | None, crs: str | None):
        """The points (lon/lat, by id) and the scenes a point query reads."""
        import math

        named = named_points(points, crs)
        lons = [p[0] for p in named.values()]
        lats = [p[1] for p in named.values()]
        # pad the search box so scenes within max_distance of a point are found (1 deg ~ 111 km)
        pad = (max_distance or 0.0) / 111_000 / max(math.cos(math.radians(max(map(abs, lats)))), 0.1)
        bbox = (min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)
        return named, self.collection.scenes(date_range=date_range, cloud_cover_lt=cloud_cover_lt, bbox=bbox, bands=bands)

    def __repr__(self) -> str:
        dates = " to ".join(str(d)[:10] for d in self.date_range) if self.date_range else "no dates"
        return (f"Rasteret({self.name!r}, source={self.data_source.name!r}, {dates}, root={self.root!r},"
                f" built={self._exists()})")

    def _exists(self) -> bool:
        if self._collection is not None:
            return True
        try:
            load_collection(self.name, self.workspace_dir)
        except (ValueError, RasteretError):
            return False
        return True

    def _options(self) -> ReaderOptions:
        """Options for reading this collection's tiles: its stored hrefs are third-party input,
        limited to the locations its source may name (:func:`collection_reader_options`)."""
        return collection_reader_options(self.data_source, self.reader_options, root=self.root)


GDF_COLUMNS = ("geometry_id", "scene_id", "datetime", "band", "data", "transform", "crs", "nodata")


def _per_date(scenes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in scenes:
        day = s.datetime.date().isoformat()
        counts[day] = counts.get(day, 0) + 1
    return counts


def _diagnose_no_scene(diagnosis: ReadDiagnosis, collection: Collection, geoms: dict, bbox) -> None:
    """Count the steps before the overlap filter, and check for swapped axes (only when empty)."""
    import shapely

    bands = diagnosis.bands
    in_dates = collection.scenes(date_range=diagnosis.date_range, bands=bands)
    diagnosis.scenes_per_date = _per_date(in_dates)
    if diagnosis.cloud_cover_lt is None:
        kept = in_dates
    else:
        kept = collection.scenes(date_range=diagnosis.date_range, cloud_cover_lt=diagnosis.cloud_cover_lt, bands=bands)
    diagnosis.after_cloud_filter = _per_date(kept)
    if kept and diagnosis.crs is None:
        swapped = swap_axes(shapely.box(*bbox))
        if any(s.geometry.intersects(swapped) for s in kept):
            diagnosis.hint = ("with x and y swapped they would overlap: give coordinates as (longitude, latitude),"
                              " x first")


def _to_lonlat(geom, crs: str):
    from rasterio.crs import CRS

    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg == 4326:
        return geom
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    return shape(transform_geom(crs, "EPSG:4326", geom.__geo_interface__))
