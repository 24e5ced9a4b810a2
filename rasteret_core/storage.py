"""Where rasteret writes: local folders or ``s3://`` prefixes, through one pyarrow filesystem API.

Writes are atomic: bytes go to a hidden temporary name beside the target and are renamed
over it (rename(2) locally, a server-side copy on S3), so readers see the old file or the
new one, never a part.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from rasteret_core.errors import ArgumentError, StorageError


def resolve_root(root: str | Path, storage_options: dict[str, Any] | None) -> tuple[str, pafs.FileSystem, str]:
    """``(display root, filesystem, path inside it)`` for a local path or ``s3://`` URI."""
    text = os.fspath(root)
    if text.startswith("s3://"):
        bucket_path = text[5:].strip("/")
        if not bucket_path:
            raise ArgumentError(f"not an s3://bucket/prefix URI: {text}")
        return f"s3://{bucket_path}", _s3_filesystem(storage_options or {}), bucket_path
    if "://" in text and not text.startswith("file://"):
        raise ArgumentError(f"unsupported collection root {text!r} (use a local path or s3://bucket/prefix)")
    if text.startswith("file://"):
        text = text[7:]
    path = str(Path(text).expanduser().resolve())
    return path, pafs.LocalFileSystem(), path


def _s3_filesystem(options: dict[str, Any]) -> pafs.S3FileSystem:
    opts = dict(options)
    endpoint = opts.pop("endpoint_url", None) or opts.get("endpoint_override") or os.environ.get(
        "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            opts.setdefault("scheme", parts.scheme)
            endpoint = parts.netloc
        opts["endpoint_override"] = endpoint
    for src, dst in (("aws_access_key_id", "access_key"), ("aws_secret_access_key", "secret_key"),
                     ("aws_session_token", "session_token"), ("region_name", "region")):
        if src in opts:
            opts[dst] = opts.pop(src)
    if "region" not in opts:
        opts["region"] = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
    return pafs.S3FileSystem(**opts)


def s3_client(options: dict[str, Any] | None):
    """A boto3 S3 client for the same ``storage_options`` as :func:`resolve_root` (endpoint,
    keys, region; the standard AWS chain for what is not given): for what pyarrow's S3
    filesystem cannot send, such as conditional writes."""
    import boto3
    from botocore.config import Config

    opts = dict(options or {})
    endpoint = opts.get("endpoint_url") or opts.get("endpoint_override") or os.environ.get(
        "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "://" not in endpoint:
        endpoint = f"{opts.get('scheme', 'https')}://{endpoint}"
    region = opts.get("region_name") or opts.get("region") or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION") or "us-west-2"
    return boto3.client(
        "s3", endpoint_url=endpoint or None, region_name=region,
        aws_access_key_id=opts.get("aws_access_key_id") or opts.get("access_key"),
        aws_secret_access_key=opts.get("aws_secret_access_key") or opts.get("secret_key"),
        aws_session_token=opts.get("aws_session_token") or opts.get("session_token"),
        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                      s3={"addressing_style": "path" if endpoint else "auto"}),
    )


def atomic_write(fs: pafs.FileSystem, target: str, data: bytes) -> None:
    """Write ``data`` to a hidden temporary name next to ``target``, then rename over it.

    Raises:
        StorageError: the write failed (e.g. disk full); ``target`` is unchanged.
    """
    parent, _, base = target.rpartition("/")
    tmp = f"{parent}/.{base}.{uuid.uuid4().hex}.tmp"
    try:
        if isinstance(fs, pafs.LocalFileSystem):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        else:
            with fs.open_output_stream(tmp) as out:
                out.write(data)
        fs.move(tmp, target)  # rename(2) locally; server-side copy on S3: both all-or-nothing
    except BaseException as exc:
        try:
            fs.delete_file(tmp)
        except (OSError, FileNotFoundError):
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise StorageError(exc.errno, f"cannot write {target}: {reason}; the previous version is unchanged") from exc
        raise
    if isinstance(fs, pafs.LocalFileSystem):
        _fsync_dir(parent)
    remove_stale_temps(fs, parent, base)


# A temporary file older than this belongs to a writer that was killed before its rename.
STALE_TEMP_SECONDS = 3600


def remove_stale_temps(fs: pafs.FileSystem, parent: str, base: str, *, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete temporary files of ``base`` left in ``parent`` by killed writers (hidden, never
    read, but they take space). Younger ones may belong to a writer still running: kept."""
    prefix, cutoff = f".{base}.", time.time() - older_than
    try:
        infos = fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    except OSError:
        return []
    removed = []
    for info in infos:
        stale = info.mtime is not None and info.mtime.timestamp() < cutoff
        if info.type == pafs.FileType.File and info.base_name.startswith(prefix) and info.base_name.endswith(".tmp") and stale:
            try:
                fs.delete_file(info.path)
                removed.append(info.path)
            except OSError:
                pass
    return removed


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def delete_missing(folder: str, keep: list[str], *, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Delete the files of ``folder`` that are not in ``keep`` (outputs a refresh replaced)."""
    _, fs, path = resolve_root(folder, storage_options)
    kept = {k.rstrip("/").rsplit("/", 1)[-1] for k in keep}
    removed = []
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name not in kept and not info.base_name.startswith("."):
            fs.delete_file(info.path)
            removed.append(info.path)
    return removed


def list_files(folder: str, *, suffix: str = "", storage_options: dict[str, Any] | None = None) -> list[str]:
    """Paths (in ``folder``'s own form: local or ``s3://``) of the visible files in ``folder``."""
    display, fs, path = resolve_root(folder, storage_options)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    names = sorted(i.base_name for i in infos
                   if i.type == pafs.FileType.File and i.base_name.endswith(suffix) and not i.base_name.startswith("."))
    return [f"{display.rstrip('/')}/{name}" for name in names]
