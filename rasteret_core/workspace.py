"""The workspace: a folder holding named collections (``~/rasteret_workspace`` by default).

The folder is chosen by argument, else the ``RASTERET_WORKSPACE`` environment variable,
else ``~/rasteret_workspace``; an ``s3://bucket/prefix`` workspace works too (team-shared
storage). Collection names are single path components such as
``bangalore_202401-12_landsat``: letters, digits, ``_``, ``-`` and ``.``, starting with a
letter or digit, at most 128 characters. Anything else (separators, ``..``, empty names)
raises ``ValueError`` before touching storage.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from rasteret_core.collection.store import Collection, METADATA_FILE, parse_date_range
from rasteret_core.errors import ArgumentError, CollectionError
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.storage import resolve_root

ENV_VAR = "RASTERET_WORKSPACE"
DEFAULT_DIRNAME = "rasteret_workspace"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def resolve_workspace(workspace_dir: str | os.PathLike[str] | None = None) -> str:
    """The workspace location: the argument, else ``$RASTERET_WORKSPACE``, else ``~/rasteret_workspace``."""
    chosen = workspace_dir if workspace_dir is not None else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return str(Path.home() / DEFAULT_DIRNAME)
    text = os.fspath(chosen)
    if text.startswith("s3://"):
        return text.rstrip("/")
    return str(Path(text).expanduser())


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid collection name, else raise ``ValueError``."""
    if not isinstance(name, str) or not name:
        raise ArgumentError("a collection name must be a non-empty string")
    if not _NAME.fullmatch(name) or ".." in name:
        raise ArgumentError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '_', '-' or '.',"
            " starting with a letter or digit (no path separators or '..')"
        )
    return name


def collection_name(custom_name: str, date_range: tuple[Any, Any], data_source: DataSource | str) -> str:
    """``<custom>_<YYYYMM>-<MM>_<source>``, e.g. ``bangalore_202401-12_landsat``.

    A range spanning years is written ``202311-202402``.
    """
    validate_name(custom_name)
    start, end = parse_date_range(date_range)
    span = f"{start:%Y%m}-{end:%m}" if start.year == end.year else f"{start:%Y%m}-{end:%Y%m}"
    source = DataSources.get(data_source) if isinstance(data_source, str) else data_source
    return validate_name(f"{custom_name}_{span}_{source.short_name}")


def collection_root(name: str, workspace_dir: str | os.PathLike[str] | None = None) -> str:
    """Where collection ``name`` lives in the workspace (validated name)."""
    return f"{resolve_workspace(workspace_dir).rstrip('/')}/{validate_name(name)}"


def list_collections(
    workspace_dir: str | os.PathLike[str] | None = None, *, storage_options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One dict per collection: ``name``, ``data_source``, ``date_range``, ``size`` (scenes), ...

    Folders that are not collections, and collections that store no date (nothing usable
    to read), are skipped. Sorted by name.
    """
    root = resolve_workspace(workspace_dir)
    _, fs, path = resolve_root(root, storage_options)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    out = []
    for info in sorted(infos, key=lambda i: i.base_name):
        if info.type != pafs.FileType.Directory or not _NAME.fullmatch(info.base_name):
            continue
        if fs.get_file_info(f"{info.path}/{METADATA_FILE}").type != pafs.FileType.File:
            continue
        try:
            coll = Collection.open(f"{root}/{info.base_name}", storage_options=storage_options)
        except CollectionError:
            continue
        described = coll.describe()
        if described["date_range"] is None:
            continue
        out.append(described)
    return out


def load_collection(
    name: str, workspace_dir: str | os.PathLike[str] | None = None, *, storage_options: dict[str, Any] | None = None
) -> Collection:
    """Open the collection called ``name``; ``ValueError`` if the workspace has none by that name."""
    root = collection_root(name, workspace_dir)
    _, fs, path = resolve_root(root, storage_options)
    if fs.get_file_info(f"{path}/{METADATA_FILE}").type != pafs.FileType.File:
        known = [c["name"] for c in list_collections(workspace_dir, storage_options=storage_options)]
        raise ArgumentError(
            f"no collection named {name!r} in workspace {resolve_workspace(workspace_dir)};"
            f" available: {', '.join(known) or 'none'}"
        )
    return Collection.open(root, storage_options=storage_options)
