"""Configurable resources: where scenes come from, how COGs are read, where results go, which AOIs."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import dagster as dg
from pydantic import Field
from shapely.geometry.base import BaseGeometry

from rasteret_core.cog import ReaderOptions, TileCache
from rasteret_core.collection import source_reader_options
from rasteret_core.errors import RasteretWarning, UnsafePathError
from rasteret_core.names import path_under
from rasteret_core.products.aois import load_aois
from rasteret_core.products.ndvi_dates import NdviBands
from rasteret_core.stac import DataSource, DataSources
from rasteret_pipelines import settings


class StacSource(dg.ConfigurableResource):
    """The STAC data source: a registered name (``sentinel-2``, ``landsat``, ...) or a local items file."""

    source: str = Field(default_factory=settings.stac_source)
    bands: list[str] = Field(default_factory=list, description="band codes to harvest; empty: what the index needs")
    index: str = Field(default_factory=settings.index_name,
                       description="the index the ndvi asset writes: NDVI, or a name of the Awesome Spectral Indices "
                       "catalogue (EVI, SAVI, NDMI, ...); the asset keeps its name")

    def data_source(self) -> DataSource:
        if self.source.endswith((".json", ".geojson", ".ndjson", ".parquet")):
            return DataSource.from_items_file(self.source, dict(DataSources.SENTINEL2.band_map), name="local-items")
        return DataSources.get(self.source)

    def ndvi_bands(self) -> dict[str, str]:
        """Band codes for red, NIR and the cloud mask of this source."""
        codes = set(self.data_source().bands)
        if {"B04", "B08", "SCL"} <= codes:
            return {"red": "B04", "nir": "B08", "mask": "SCL"}
        if {"red", "nir08", "QA_PIXEL"} <= codes:
            return {"red": "red", "nir": "nir08", "mask": "QA_PIXEL"}  # common names: right on TM/ETM+ and OLI
        raise dg.DagsterInvariantViolationError(f"source {self.source!r} has no red/NIR/mask bands: {sorted(codes)}")

    def index_bands(self) -> NdviBands:
        """The bands and the index the ``ndvi`` asset reads and writes."""
        return NdviBands(**self.ndvi_bands(), index=self.index)

    def index_name(self) -> str:
        """The configured index's catalogue name (what outputs, charts and the UI show)."""
        return self.index_bands().name

    def read_bands(self) -> list[str]:
        """Every band code the index reads from this source (its bands and the cloud mask); an
        unknown index or one this source cannot compute is an ``ArgumentError`` naming it."""
        return self.index_bands().read_codes(self.data_source())

    def harvest_bands(self) -> list[str]:
        return self.bands or sorted(set(self.ndvi_bands().values()) | set(self.read_bands()))


class CogReader(dg.ConfigurableResource):
    """How COGs are fetched. Credentials come from the standard AWS chain unless given here
    (for example ``dg.EnvVar("AWS_ACCESS_KEY_ID")``); they are never logged or stored."""

    max_concurrency: int = 32
    retries: int = 5
    timeout: float = 30.0
    endpoint_url: str | None = Field(default_factory=settings.s3_endpoint)
    requester_pays: bool | None = Field(default=None, description="default: as the data source says")
    sign: bool | None = Field(default=None, description="sign s3:// reads (private buckets); default: only requester-pays")
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    allowed_schemes: list[str] | None = Field(
        default=None, description="schemes hrefs may use (http, https, s3, file); default: a STAC API's "
        "items http(s) and s3 only, a local items file's also local files")
    local_roots: list[str] | None = Field(
        default=None, description="folders local hrefs may point into, besides a local items file's own folder")
    tile_cache: str | None = Field(
        default_factory=settings.tile_cache, description="local folder (private to the user running the runs) "
        "where fetched tiles are kept for the machine's later reads; default $DAGSTER_HOME/tile_cache")
    tile_cache_max_gib: float = Field(default=2.0, gt=0, description="the tile cache's bound on disk")

    def options(self, source: DataSource | None = None) -> ReaderOptions:
        """Reader options; with ``source``, limited to the locations its hrefs may use."""
        payer = self.requester_pays if self.requester_pays is not None else bool(source and source.requester_pays)
        options = ReaderOptions(
            max_concurrency=self.max_concurrency, retries=self.retries, timeout=self.timeout,
            endpoint_url=self.endpoint_url, requester_pays=payer, sign=self.sign,
            aws_access_key_id=self.aws_access_key_id, aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            allowed_schemes=tuple(self.allowed_schemes) if self.allowed_schemes is not None else None,
            local_roots=tuple(self.local_roots) if self.local_roots is not None else None,
            tile_cache=self._tile_cache(),
        )
        return source_reader_options(source, options) if source is not None else options

    def _tile_cache(self) -> TileCache | None:
        """The configured cache. The default folder (under ``DAGSTER_HOME``) is used only when
        it is safe, with a warning otherwise; a folder chosen explicitly must be safe."""
        if not self.tile_cache:
            return None
        cache = TileCache(self.tile_cache, int(self.tile_cache_max_gib * 1024**3))
        try:
            cache.check()  # here, so a bad folder is reported before any read
        except UnsafePathError as exc:
            if self.tile_cache != settings.default_tile_cache():
                raise
            warnings.warn(f"{exc}; reading without a tile cache (set RASTERET_TILE_CACHE to a private folder)",
                          RasteretWarning, stacklevel=2)
            return None
        return cache


class Storage(dg.ConfigurableResource):
    """Where the collection, NDVI GeoTIFFs and statistics live: a folder or an ``s3://`` prefix."""

    root: str = Field(default_factory=settings.storage_root)
    endpoint_url: str | None = Field(default_factory=settings.s3_endpoint)

    def path(self, *parts: str) -> str:
        """``root/part/...`` with every part (AOI names, dates, ids) made path-safe by
        :func:`rasteret_core.names.safe_name` and the result checked to stay under ``root``."""
        return path_under(self.root, *parts)

    @property
    def collection_root(self) -> str:
        return self.path("collection")

    @property
    def ndvi_root(self) -> str:
        return self.path("ndvi")

    @property
    def stats_root(self) -> str:
        return self.path("ndvi_stats")

    def storage_options(self) -> dict[str, Any] | None:
        return {"endpoint_url": self.endpoint_url} if self.endpoint_url and self.root.startswith("s3://") else None

    def reader_options(self) -> dict[str, Any]:
        """Options for reading stored outputs back; a team bucket is private, so reads are signed."""
        return {"endpoint_url": self.endpoint_url, "sign": self.root.startswith("s3://")}


class Aois(dg.ConfigurableResource):
    """Named areas of interest (GeoJSON or GeoParquet, EPSG:4326 polygons with a ``name``)."""

    path: str = Field(default_factory=settings.aoi_file)

    def load(self) -> dict[str, BaseGeometry]:
        return load_aois(self.path)

    def bounds(self) -> tuple[float, float, float, float]:
        import shapely

        return tuple(shapely.union_all(list(self.load().values())).bounds)


class DaskCluster(dg.ConfigurableResource):
    """Where a run's work is computed (the ndvi asset's dates, lazy ``load`` results):
    in-process by default, or a Dask cluster.

    ``address`` empty (the default): dask's threaded scheduler in the run's own process.
    ``"local"``: a ``dask.distributed.LocalCluster`` started for the run (``n_workers``
    processes, ``memory_limit`` each) and closed after it. Any other value is a scheduler
    address (``tcp://scheduler:8786``) to connect to. Workers sign with their own AWS chain;
    no credential is put into the graph.
    """

    address: str = Field(default_factory=settings.dask_address,
                         description="'' in-process, 'local' for a LocalCluster, or a scheduler address"
                                     " (default: $RASTERET_DASK_ADDRESS)")
    n_workers: int = 2
    threads_per_worker: int = 2
    memory_limit: str = "2GiB"

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A ``distributed.Client`` for the block (``None`` in-process: the work runs in the run's
        own process); a cluster started here is closed at its end."""
        with self.scheduler() as kwargs:
            scheduler = kwargs["scheduler"]
            yield None if isinstance(scheduler, str) else scheduler

    @contextlib.contextmanager
    def scheduler(self) -> Iterator[dict[str, Any]]:
        """Keyword arguments for ``dask.compute(..., **kw)`` / ``ds.compute(**kw)`` / ``to_zarr(compute_kwargs=kw)``
        for the duration of the block (a cluster started here is closed at its end)."""
        if not self.address:
            yield {"scheduler": "threads"}
            return
        from distributed import Client, LocalCluster

        if self.address == "local":
            with LocalCluster(n_workers=self.n_workers, threads_per_worker=self.threads_per_worker,
                              memory_limit=self.memory_limit, dashboard_address=None, processes=True) as cluster:
                with Client(cluster, set_as_default=False) as client:
                    yield {"scheduler": client}
            return
        with Client(self.address, set_as_default=False) as client:
            yield {"scheduler": client}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"stac": StacSource(), "reader": CogReader(), "storage": Storage(), "aois": Aois(),
                   "dask": DaskCluster()}
    )
