"""A disk cache of COG tile bytes, shared by the reads and runs of one machine.

A backfill that Dagster splits into one run per AOI reads each date's scenes once per run;
where the AOIs share COG tiles, the same bytes would be fetched again by every run. With a
:class:`TileCache` in the reader options, each tile's stored (still compressed) bytes are kept
on local disk under a key made of the file's URL, its version (the header's validator, the
same condition every tile read sends) and the tile's byte range. A later read of that tile, in
this process or another one on the machine, decodes from disk and makes no request.

- **Only versioned files are cached.** A header without a validator (no ETag or
  Last-Modified) gives no way to know the bytes still belong to the file it describes.
- **Entries are whole or absent.** They are written to a temporary name and renamed, so a
  killed run leaves none half-written; an entry whose length is not the tile's byte count is a
  miss and is removed.
- **Bounded.** The folder holds at most ``max_bytes`` (default 2 GiB); the least recently
  used entries go first.
- **Trusted, so private.** Cached bytes become pixels without another check against the
  source, so the folder must belong to the user running the read and must not be writable by
  others; any other folder is refused with :class:`~rasteret_core.errors.UnsafePathError`.
  Point it at local disk, never at a folder shared with other users.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

from rasteret_core.errors import ArgumentError, UnsafePathError

DEFAULT_MAX_BYTES = 2 * 1024**3
_SCAN_FRACTION = 8  # the folder's size is re-measured after writing max_bytes / 8


class TileCache:
    """Tile bytes on local disk, keyed by (URL, file version, byte range); see the module doc.

    Picklable (only the folder and the bound travel), so reader options holding one can be
    sent to dask workers; each process checks the folder before its first use.
    """

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ArgumentError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self.folder = Path(folder).expanduser().absolute()
        self.max_bytes = max_bytes
        self._checked = False
        self._written = 0
        self._lock = threading.Lock()

    def __reduce__(self):
        return (TileCache, (str(self.folder), self.max_bytes))

    def __repr__(self) -> str:
        return f"TileCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TileCache) and (self.folder, self.max_bytes) == (other.folder, other.max_bytes)

    def __hash__(self) -> int:
        return hash((self.folder, self.max_bytes))

    # --- entries -----------------------------------------------------------------------------
    def get(self, url: str, validator: str | None, start: int, end: int) -> bytes | None:
        """The cached bytes ``[start, end)`` of ``url`` at version ``validator``, or ``None``."""
        if not validator:
            return None
        path = self._path(url, validator, start, end)
        try:
            with open(path, "rb") as fh:
                data = fh.read(end - start + 1)
        except OSError:
            return None
        if len(data) != end - start:  # not this tile's bytes: never decode them
            self._remove(path)
            return None
        _touch(path)  # recently used: evicted last
        return data

    def holds(self, url: str, validator: str | None, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Those of ``ranges`` (of ``url`` at ``validator``) with an entry of their length."""
        if not validator:
            return []
        found = []
        for start, end in ranges:
            try:
                if os.stat(self._path(url, validator, start, end)).st_size == end - start:
                    found.append((start, end))
            except OSError:
                pass
        return found

    def discard(self, url: str, validator: str | None, start: int, end: int) -> None:
        """Remove the entry of ``[start, end)`` of ``url`` at ``validator`` (bytes that did not decode)."""
        if validator:
            self._remove(self._path(url, validator, start, end))

    def put(self, url: str, validator: str | None, start: int, end: int, data: bytes | memoryview) -> None:
        """Keep ``data`` (the bytes ``[start, end)`` of ``url`` at ``validator``); a no-op for
        an unversioned file or bytes of another length. Disk errors are not the read's."""
        if not validator or len(data) != end - start:
            return
        path = self._path(url, validator, start, end)
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                _touch(tmp)
                os.replace(tmp, path)
            except BaseException:
                self._remove(tmp)
                raise
        except OSError:
            return
        with self._lock:
            self._written += len(data)
            due = self._written >= self.max_bytes // _SCAN_FRACTION
            if due:
                self._written = 0
        if due:
            self._trim()

    def trim(self) -> int:
        """Remove the least recently used entries until the folder holds at most ``max_bytes``
        (nine tenths of it, so trimming is not repeated on every write); returns the bytes left.

        Runs on each process's first use and after every ``max_bytes / 8`` it writes, so many
        short runs sharing the folder keep it bounded too. Disk errors skip entries, never
        fail a read."""
        self._check()
        return self._trim()

    def _trim(self) -> int:
        entries = []
        try:
            subs = [sub.path for sub in os.scandir(self.folder) if sub.is_dir(follow_symlinks=False)]
        except OSError:
            return 0
        for sub in subs:
            try:
                listing = list(os.scandir(sub))
            except OSError:
                continue
            for entry in listing:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    entries.append((st.st_mtime_ns, st.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return total
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * 9 // 10:
                break
            self._remove(path)
            total -= size
        return total

    def check(self) -> None:
        """Create the folder if needed and check it may be used (see the module doc).

        Raises:
            UnsafePathError: a link, a folder others may write or replace, or one that cannot be created.
        """
        self._check()

    # --- internals ---------------------------------------------------------------------------
    def _path(self, url: str, validator: str, start: int, end: int) -> Path:
        self._check()
        key = hashlib.sha256(f"{url}\0{validator}\0{start}\0{end}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / key[:2] / key[2:]

    def _check(self) -> None:
        """Once per process: create the folder (owner-only), refuse one others could write or
        replace, and trim it to its bound (earlier runs may have left it full)."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            try:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                st = os.lstat(self.folder)
            except OSError as exc:
                raise UnsafePathError(f"tile cache {self.folder}: cannot be created ({exc.strerror or exc})") from exc
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"tile cache {self.folder}: not a folder (a link or a file)")
            if os.name != "nt":  # Windows reports every writable folder as mode 0o777: ACLs decide there
                _check_owner(self.folder, st, "the folder")
                for parent in self.folder.parents:  # whoever may write a parent can swap the folder
                    try:
                        pst = os.stat(parent)
                    except OSError:
                        continue
                    _check_owner(parent, pst, "a parent folder", sticky_ok=True)
            self._checked = True
        self._trim()

    @staticmethod
    def _remove(path: str | Path) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _check_owner(path: Path, st: os.stat_result, what: str, sticky_ok: bool = False) -> None:
    """Refuse ``path`` unless only its owner (this user, or root for a parent) may change it;
    a sticky parent such as ``/tmp`` is fine (others cannot rename what is in it)."""
    me = os.getuid()
    if st.st_uid not in ((me, 0) if sticky_ok else (me,)):
        raise UnsafePathError(f"tile cache: {what} {path} is owned by another user (uid {st.st_uid}); "
                              "its bytes would become pixels unchecked")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (sticky_ok and st.st_mode & stat.S_ISVTX):
        raise UnsafePathError(f"tile cache: {what} {path} is writable by other users; its bytes would become "
                              "pixels unchecked (chmod go-w it, or choose a private folder)")


def _touch(path: str | Path) -> None:
    """Stamp ``path`` with the clock's full resolution: the file system's own stamps may be a
    few milliseconds coarse, which would make the eviction order arbitrary within a burst."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        pass
