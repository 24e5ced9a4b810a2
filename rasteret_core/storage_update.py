"""Read-modify-write of one stored file that never loses a concurrent writer's change.

Several people and machines refresh one shared collection. A plain read, merge and write
loses whichever write lands first. Each store's own primitive closes that window:

- **local disk**: an exclusive ``flock`` on a lock file held from the read to the rename (the
  write itself stays a temporary file renamed over the target). Works between processes of
  one machine and, on Linux, over NFSv4 (emulated with POSIX locks).
- **S3**: conditional writes. The file is read with its ETag and written back with
  ``If-Match: <etag>`` (``If-None-Match: *`` when it did not exist); a 412 means someone
  else wrote in between, so the change is re-applied to their version, a bounded number of
  times, then a :class:`WriteConflictError`.

Other filesystems get the plain atomic write (last writer wins), as before.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pyarrow.fs as pafs

from rasteret_core.errors import StorageError, WriteConflictError
from rasteret_core.storage import atomic_write, s3_client

MAX_ATTEMPTS = 10
"""Conditional writes tried before :class:`WriteConflictError` (each after a growing, jittered pause)."""

Change = Callable[[bytes | None], bytes | None]
"""Given the file's current bytes (``None``: no file), the bytes to store (``None``: leave it).
It may be called more than once (once per attempt), so it must not accumulate side effects."""


def update_file(fs: pafs.FileSystem, path: str, change: Change, *, lock: str | None = None,
                storage_options: dict[str, Any] | None = None) -> bytes | None:
    """Store ``change(current bytes)`` at ``path`` so that no concurrent update is lost.

    Args:
        fs, path: the filesystem and the path inside it (``bucket/key`` on S3).
        change: see :data:`Change`.
        lock: the local lock file (default: a hidden ``.<name>.lock`` beside ``path``).
        storage_options: endpoint and credentials for S3's conditional writes.

    Returns:
        The bytes written, or ``None`` when ``change`` left the file alone.

    Raises:
        WriteConflictError: S3 only, after :data:`MAX_ATTEMPTS` conflicting writes.
        StorageError: the write failed; the previous file is intact.
    """
    if isinstance(fs, pafs.LocalFileSystem):
        parent, _, base = path.rpartition("/")
        with local_lock(lock or f"{parent}/.{base}.lock"):
            new = change(_read_local(path))
            if new is not None:
                atomic_write(fs, path, new)
            return new
    if isinstance(fs, pafs.S3FileSystem):
        return _update_s3(path, change, storage_options)
    new = change(_read_fs(fs, path))
    if new is not None:
        atomic_write(fs, path, new)
    return new


@contextmanager
def local_lock(path: str) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing) for the ``with`` block.
    Released by the kernel if the process dies, so a killed writer never blocks the others."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_local(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _read_fs(fs: pafs.FileSystem, path: str) -> bytes | None:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read()


def _update_s3(path: str, change: Change, storage_options: dict[str, Any] | None) -> bytes | None:
    from botocore.exceptions import ClientError

    client = s3_client(storage_options)
    bucket, _, key = path.partition("/")
    for attempt in range(MAX_ATTEMPTS):
        try:
            got = client.get_object(Bucket=bucket, Key=key)
            old, etag = got["Body"].read(), got["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise StorageError(0, f"cannot read s3://{path}: {_code(exc)}") from None
            old, etag = None, None
        new = change(old)
        if new is None:
            return None
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            client.put_object(Bucket=bucket, Key=key, Body=new, **condition)
            return new
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status not in (409, 412) and _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise StorageError(0, f"cannot write s3://{path}: {_code(exc)}; the previous version is unchanged") from None
        # another writer got in first: re-apply the change to their version after a pause
        # that grows and is jittered, so writers that collided do not collide again
        time.sleep(random.uniform(0, 0.05 * 2**min(attempt, 5)))
    raise WriteConflictError(0, f"s3://{path} kept changing under {MAX_ATTEMPTS} conditional writes; nothing was"
                                " written, try again")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {})
    return str(error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") or type(exc).__name__)
