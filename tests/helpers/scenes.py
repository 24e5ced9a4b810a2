"""Scenes for collection write tests, without a network: one real header (from a small COG
written by rasterio) shared by every band of every item, each under the item's own href."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
import shapely

from rasteret_core.cog import CogHeader, read_header
from rasteret_core.collection.scene import BandAsset, Scene

DAY = dt.date(2024, 1, 10)


def small_header(folder: Path) -> CogHeader:
    path = folder / "one.tif"
    profile = dict(driver="COG", width=64, height=64, count=1, dtype="uint16", crs="EPSG:32643",
                   transform=rasterio.transform.from_origin(770000, 1440000, 10, 10), compress="DEFLATE",
                   blocksize=32)
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(64 * 64, dtype="uint16").reshape(64, 64), 1)
    return read_header(path)


def href(item: str, band: str) -> str:
    return f"https://cogs.example.com/{item}/{band}.tif"


def scene(item: str, bands: list[str], header: CogHeader, *, day: dt.date = DAY, failed: tuple[str, ...] = ()) -> Scene:
    """An item of ``day`` with a header for each of ``bands`` (a failed read for those in ``failed``)."""
    assets = {}
    for band in bands:
        if band in failed:
            assets[band] = BandAsset(band, href(item, band), None, "FetchError: HTTP 503")
        else:
            assets[band] = BandAsset(band, href(item, band), header.with_url(href(item, band)))
    when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.timezone.utc)
    return Scene(id=item, collection="sentinel-2-l2a", datetime=when, geometry=shapely.box(77.5, 12.9, 77.6, 13.0),
                 cloud_cover=5.0, bands=assets, properties={})


def stored_headers(collection, day: dt.date = DAY) -> set[tuple[str, str]]:
    """``(item, band)`` pairs with a stored header on ``day``."""
    return {(s.id, b) for s in collection.scenes(date_range=(day, day)) for b, a in s.bands.items()
            if a.header is not None}


def partition_bands(collection) -> set[str]:
    """Bands the stored partitions hold (struct columns), whatever the metadata file says."""
    from rasteret_core.collection.schema import table_bands

    return set(table_bands(collection.read_table().schema))
