"""Data sources: where items are searched and which asset holds which band.

A :class:`DataSource` is a plain declarative value. The registry :class:`DataSources` holds the
built-in ones (Sentinel-2 L2A and Landsat C2 L2 on Earth Search and on USGS landsatlook) and
any the user registers::

    >>> from rasteret_core.stac.sources import DataSources, DataSource
    >>> DataSources.SENTINEL2.asset_key("B04")
    'red'
    >>> pc = DataSource.from_stac(
    ...     "https://planetarycomputer.microsoft.com/api/stac/v1", "sentinel-2-l2a",
    ...     {"B04": "B04", "B08": "B08"}, name="pc-sentinel-2-l2a")
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rasteret_core.errors import ArgumentError
from rasteret_core.radiometry import landsat_sensor
from rasteret_core.types import Bands, known_bands


@dataclass(frozen=True)
class DataSource:
    """Where to search items and how to find each band's COG in an item.

    ``band_map`` maps the band codes users ask for (``B04``) to STAC asset keys (``red``).
    ``href_field`` is a dotted path inside an asset giving the URL to read
    (``"alternate.s3.href"`` for landsatlook items); when the item lacks it, the asset's plain
    ``href`` is used. ``items_path`` makes the source a local items file (GeoJSON
    FeatureCollection, NDJSON or stac-geoparquet) searched in-process instead of a STAC API.
    ``requester_pays`` makes reads of this source's ``s3://`` hrefs signed and billed to the
    reader; other sources stay unsigned.

    ``radiometry`` overrides the harvest's DN -> physical rule per band code
    (``{"B04": {"scale": 0.0001, "offset": -0.1}}``; see :mod:`rasteret_core.radiometry`).
    ``band_sensors`` restricts codes to items of some sensors (``{"B4": ("OLI",)}``): Landsat
    band numbers mean different bands on TM/ETM+ and OLI, so a code never names two bands.
    """

    name: str
    band_map: Mapping[str, str] = field(hash=False)
    stac_url: str | None = None
    collection: str | None = None
    requester_pays: bool = False
    href_field: str = "href"
    cloud_cover_property: str = "eo:cloud_cover"
    platform_property: str = "platform"
    items_path: str | None = None
    short_name: str | None = None
    """Used in generated collection names (``bangalore_202401-12_landsat``)."""
    radiometry: Mapping[str, Mapping[str, float]] = field(default_factory=dict, hash=False)
    band_sensors: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    signing: str | None = None
    """Read-time signing of the stored (unsigned) hrefs: ``"planetary-computer"`` appends a
    fresh SAS token to each blob request (see :mod:`rasteret_core.cog.azure`); ``None``: none."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ArgumentError("a data source needs a name")
        if not self.band_map:
            raise ArgumentError(f"data source {self.name!r} has an empty band_map")
        if (self.stac_url is None) == (self.items_path is None):
            raise ArgumentError(f"data source {self.name!r} needs exactly one of stac_url or items_path")
        object.__setattr__(self, "band_map", dict(self.band_map))
        overrides = {}
        for band, rule in dict(self.radiometry or {}).items():
            if band not in self.band_map:
                raise ArgumentError(f"data source {self.name!r}: radiometry override for unknown band {band!r}")
            if not isinstance(rule, Mapping) or not set(rule) <= {"scale", "offset"} or not rule:
                raise ArgumentError(f"data source {self.name!r}: radiometry override for {band!r} must be"
                                 " {'scale': s, 'offset': o}")
            overrides[band] = {k: float(v) for k, v in rule.items()}
        object.__setattr__(self, "radiometry", overrides)
        object.__setattr__(self, "band_sensors", {b: tuple(v) for b, v in dict(self.band_sensors or {}).items()})
        if self.signing not in SIGNING_SCHEMES:
            raise ArgumentError(f"data source {self.name!r}: unknown signing {self.signing!r};"
                             f" known: {', '.join(str(k) for k in SIGNING_SCHEMES)}")
        if self.items_path is not None:
            object.__setattr__(self, "items_path", os.fspath(self.items_path))
        if self.short_name is None:
            object.__setattr__(self, "short_name", self.name.split("-")[0].lower())

    # --- constructors ------------------------------------------------------------------
    @classmethod
    def from_stac(
        cls,
        stac_url: str,
        collection: str,
        band_map: Mapping[str, str],
        *,
        name: str | None = None,
        requester_pays: bool = False,
        href_field: str = "href",
        cloud_cover_property: str = "eo:cloud_cover",
        platform_property: str = "platform",
        short_name: str | None = None,
        radiometry: Mapping[str, Mapping[str, float]] | None = None,
        band_sensors: Mapping[str, tuple[str, ...]] | None = None,
        signing: str | None = None,
    ) -> "DataSource":
        """A source backed by any STAC API (``stac_url``) and one of its collections."""
        return cls(
            name=name or collection, band_map=band_map, stac_url=stac_url.rstrip("/"),
            collection=collection, requester_pays=requester_pays, href_field=href_field,
            cloud_cover_property=cloud_cover_property, platform_property=platform_property,
            short_name=short_name, radiometry=radiometry or {}, band_sensors=band_sensors or {}, signing=signing,
        )

    @classmethod
    def from_items_file(
        cls,
        path: str | os.PathLike[str],
        band_map: Mapping[str, str],
        *,
        name: str | None = None,
        collection: str | None = None,
        requester_pays: bool = False,
        href_field: str = "href",
        cloud_cover_property: str = "eo:cloud_cover",
        platform_property: str = "platform",
        short_name: str | None = None,
        radiometry: Mapping[str, Mapping[str, float]] | None = None,
        band_sensors: Mapping[str, tuple[str, ...]] | None = None,
        signing: str | None = None,
    ) -> "DataSource":
        """A source backed by a local items file, searched in-process with the same filters.

        ``collection``, when given, keeps only items of that STAC collection.
        """
        path = os.fspath(path)
        return cls(
            name=name or Path(path).stem, band_map=band_map, items_path=path, collection=collection,
            requester_pays=requester_pays, href_field=href_field,
            cloud_cover_property=cloud_cover_property, platform_property=platform_property,
            short_name=short_name, radiometry=radiometry or {}, band_sensors=band_sensors or {}, signing=signing,
        )

    # --- lookups -----------------------------------------------------------------------
    @property
    def bands(self) -> list[str]:
        """The band codes this source knows, in declaration order."""
        return list(self.band_map)

    def check_bands(self, bands: Bands | None) -> list[str]:
        """Return ``bands`` (all bands when ``None``); an ``ArgumentError`` names unknown codes."""
        if bands is None:
            return self.bands
        return known_bands(bands, self.band_map, f"data source {self.name!r}")

    def asset_key(self, band: str) -> str:
        """The STAC asset key holding ``band``."""
        self.check_bands([band])
        return self.band_map[band]

    def band_problem(self, item: Mapping[str, Any], band: str) -> str | None:
        """Why ``band`` may not be read from ``item`` (a code restricted to other sensors), else None."""
        allowed = self.band_sensors.get(band)
        if not allowed:
            return None
        sensor = landsat_sensor(item)
        if sensor is None or sensor in allowed:
            return None
        names = [code for code, key in self.band_map.items() if key == self.band_map[band] and code not in self.band_sensors]
        hint = f"; ask for {names[0]!r}" if names else ""
        return (f"BandCodeError: band code {band!r} is the {'/'.join(allowed)} band {band!r}; item"
                f" {item.get('id')!r} is {sensor}, whose band numbers differ{hint}")

    def asset_href(self, asset: Mapping[str, Any]) -> str | None:
        """The URL to read for ``asset``: ``href_field`` if present, else its ``href``."""
        value: Any = asset
        for part in self.href_field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            return value
        href = asset.get("href")
        return href if isinstance(href, str) and href else None

    # --- serialisation (collections remember their source) -----------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` restores an equal source."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DataSource":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
LANDSATLOOK = "https://landsatlook.usgs.gov/stac-server"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"
SIGNING_SCHEMES = (None, "planetary-computer")
"""Read-time signing schemes a source may name (``DataSource.signing``)."""

_S2_BANDS = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red",
    "B05": "rededge1", "B06": "rededge2", "B07": "rededge3", "B08": "nir",
    "B8A": "nir08", "B09": "nir09", "B11": "swir16", "B12": "swir22", "SCL": "scl",
}
_LANDSAT_BANDS = {
    # OLI band numbers (Landsat 8/9), refused on TM/ETM+ items where SR_B4 is NIR, not red
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red",
    "B5": "nir08", "B6": "swir16", "B7": "swir22",
    # common names: the same spectral band on every sensor (TM/ETM+ red = SR_B3, OLI red = SR_B4)
    "blue": "blue", "green": "green", "red": "red", "nir08": "nir08", "swir16": "swir16", "swir22": "swir22",
    "QA_PIXEL": "qa_pixel",
}
# Planetary Computer's sentinel-2-l2a names its assets by band code (B04, not red)
_PC_S2_BANDS = {code: code for code in _S2_BANDS}
_OLI_ONLY = {code: ("OLI",) for code in ("B1", "B2", "B3", "B4", "B5", "B6", "B7")}

_REGISTRY: dict[str, DataSource] = {}
_ALIASES = {
    "sentinel2": "sentinel-2-l2a", "sentinel-2": "sentinel-2-l2a", "landsat": "landsat-c2l2-sr",
    "sentinel-2-c1": "sentinel-2-c1-l2a", "pc-sentinel-2": "pc-sentinel-2-l2a", "pc-landsat": "pc-landsat-c2-l2",
}


class DataSources:
    """Registry of data sources; built-ins are class attributes.

    - ``SENTINEL2``: Sentinel-2 L2A COGs on Earth Search v1 (public bucket, unsigned reads).
    - ``LANDSAT``: Landsat C2 L2 SR from USGS landsatlook, read from ``alternate.s3.href``
      (``s3://usgs-landsat``, requester pays: reads are signed and billed to you).
    - ``LANDSAT_EARTH_SEARCH``: the same Landsat data searched on Earth Search
      (``landsat-c2-l2``, whose asset hrefs are already ``s3://usgs-landsat``).
    - ``SENTINEL2_C1``: Earth Search's reprocessed Sentinel-2 Collection 1
      (``sentinel-2-c1-l2a``, one processing baseline, offset in ``raster:bands``; public).
    - ``PC_SENTINEL2`` / ``PC_LANDSAT``: Planetary Computer's ``sentinel-2-l2a`` (asset keys
      B04, B08, ...) and ``landsat-c2-l2`` on Azure Blob Storage; collections store the
      unsigned hrefs and reads append a short-lived SAS token (``signing="planetary-computer"``).
    """

    SENTINEL2 = DataSource.from_stac(EARTH_SEARCH, "sentinel-2-l2a", _S2_BANDS, short_name="sentinel")
    LANDSAT = DataSource.from_stac(
        LANDSATLOOK, "landsat-c2l2-sr", _LANDSAT_BANDS, requester_pays=True,
        href_field="alternate.s3.href", short_name="landsat", band_sensors=_OLI_ONLY,
    )
    LANDSAT_EARTH_SEARCH = DataSource.from_stac(
        EARTH_SEARCH, "landsat-c2-l2", _LANDSAT_BANDS, name="landsat-c2-l2-earth-search",
        requester_pays=True, short_name="landsat", band_sensors=_OLI_ONLY,
    )

    SENTINEL2_C1 = DataSource.from_stac(EARTH_SEARCH, "sentinel-2-c1-l2a", _S2_BANDS, short_name="sentinelc1")
    PC_SENTINEL2 = DataSource.from_stac(
        PLANETARY_COMPUTER, "sentinel-2-l2a", _PC_S2_BANDS, name="pc-sentinel-2-l2a", short_name="pcsentinel",
        signing="planetary-computer",
    )
    PC_LANDSAT = DataSource.from_stac(
        PLANETARY_COMPUTER, "landsat-c2-l2", _LANDSAT_BANDS, name="pc-landsat-c2-l2", short_name="pclandsat",
        band_sensors=_OLI_ONLY, signing="planetary-computer",
    )

    custom = staticmethod(DataSource.from_stac)
    from_items_file = staticmethod(DataSource.from_items_file)

    @staticmethod
    def register(source: DataSource, *, replace: bool = False) -> DataSource:
        """Make ``source`` available by name through :meth:`get`."""
        key = source.name.lower()
        if key in _REGISTRY and _REGISTRY[key] != source and not replace:
            raise ArgumentError(f"a different data source named {source.name!r} is already registered")
        _REGISTRY[key] = source
        return source

    @staticmethod
    def get(name: "str | DataSource") -> DataSource:
        """The registered source called ``name`` (case-insensitive); ``ValueError`` if none."""
        if isinstance(name, DataSource):
            return name
        try:
            key = name.lower()
            return _REGISTRY[_ALIASES.get(key, key)]
        except KeyError:
            raise ArgumentError(f"unknown data source {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None

    @staticmethod
    def names() -> list[str]:
        return sorted(_REGISTRY)


for _source in (DataSources.SENTINEL2, DataSources.LANDSAT, DataSources.LANDSAT_EARTH_SEARCH,
                DataSources.SENTINEL2_C1, DataSources.PC_SENTINEL2, DataSources.PC_LANDSAT):
    DataSources.register(_source)
