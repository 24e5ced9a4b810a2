"""How a refresh combines what is stored for a date with what it has just read.

A refresh never drops what it did not re-read: rows are merged per item and band.

- A band the refresh did not ask for keeps its stored header.
- A band it asked for takes the new header; when the new read failed but a header is stored,
  the stored one stays (a bad minute of a server does not erase it) and a note says so.
- An item the search no longer returns is kept, unless ``prune`` removes it (and says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from rasteret_core.collection.schema import (
    GEOMETRY_COLUMN,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    geo_metadata,
    table_bands,
)


@dataclass
class Merged:
    """The merged table and what the merge decided."""

    table: pa.Table
    pruned: list[str] = field(default_factory=list)
    """Ids of stored items removed because ``prune`` was asked and the search did not return them."""
    kept_headers: list[str] = field(default_factory=list)
    """``"<item> <band>"`` whose new read failed while a stored header was kept."""


def merge_tables(stored: pa.Table | None, new: pa.Table, read_bands: Iterable[str], *, prune: bool = False) -> Merged:
    """``new`` merged into ``stored`` (both partitions of one date), rows sorted by time and id.

    ``read_bands``: the bands the refresh read (others keep their stored structs).
    """
    read = set(read_bands)
    if stored is None or stored.num_rows == 0:
        return Merged(new)
    bands = list(dict.fromkeys([*table_bands(stored.schema), *table_bands(new.schema)]))
    schema = _schema_with(new.schema, stored.schema, bands)
    old_rows = {row["id"]: row for row in stored.to_pylist()}
    out: dict[str, dict] = {}
    kept_headers: list[str] = []
    for row in new.to_pylist():
        before = old_rows.get(row["id"])
        if before is not None:
            for band in bands:
                fresh, old = row.get(band), before.get(band)
                if band not in read or fresh is None:
                    row[band] = old
                elif _has_header(old) and not _has_header(fresh):
                    row[band] = old
                    kept_headers.append(f"{row['id']} {band}")
        out[row["id"]] = row
    pruned = []
    for item_id, row in old_rows.items():
        if item_id in out:
            continue
        if prune:
            pruned.append(item_id)
        else:
            out[item_id] = row
    rows = sorted(out.values(), key=lambda r: (r["datetime"], r["id"]))
    table = pa.Table.from_pylist(rows, schema=schema)
    geoms = [shapely.from_wkb(r[GEOMETRY_COLUMN]) for r in rows]
    metadata = {b"geo": json.dumps(geo_metadata(geoms)).encode(), SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode()}
    return Merged(table.replace_schema_metadata(metadata), sorted(pruned), kept_headers)


def read_table(data: bytes | None) -> pa.Table | None:
    """A stored partition's bytes as a table (``None`` for no file)."""
    return pq.read_table(pa.BufferReader(data)) if data is not None else None


def _has_header(struct: dict | None) -> bool:
    return struct is not None and struct.get("width") is not None


def _schema_with(new: pa.Schema, stored: pa.Schema, bands: list[str]) -> pa.Schema:
    """``new``'s schema with the band columns only ``stored`` has (their stored type)."""
    fields = [f for f in new if f.name not in bands]
    for band in bands:
        fields.append(new.field(band) if band in new.names else stored.field(band))
    return pa.schema(fields)
