"""Path-safe names: the one place where third-party text becomes part of a path.

Scene ids, AOI names and dates come from STAC APIs, items files and users; any of them may
hold ``/``, ``..``, spaces or control characters. :func:`safe_name` maps every string to a
single, portable path component, and different strings to different components, so one
name can neither leave its folder nor overwrite another's output:

- letters, digits, ``_``, ``-`` and ``.`` are kept (a leading ``.`` is escaped, so no
  component is hidden, ``.`` or ``..``); every other character becomes ``~XX`` per UTF-8
  byte (``North Field`` -> ``North~20Field``, ``~`` -> ``~7E``). Plain ids such as
  ``S2B_43PGQ_20240105_0_L2A`` or ``2024-01-05`` are unchanged.
- the mapping is reversible (:func:`original_name`), except for names whose encoding is
  longer than ``max_length``: those are cut and end in ``~~`` plus 16 hex digits of their
  SHA-256, so they stay distinct.

:func:`path_under` joins safe components under a root and checks that the resolved path is
still inside it (symlinks included, for local roots).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from typing import Iterable

from rasteret_core.errors import ArgumentError, ArgumentTypeError, UnsafePathError

MAX_LENGTH = 160
"""Longest component made: leaves room under the usual 255-byte file-name limit for a
suffix and the hidden temporary name an atomic write uses."""

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_ESCAPE = re.compile(r"~([0-9A-F]{2})")
_HASHED = "~~"


def safe_name(name: str, *, max_length: int = MAX_LENGTH) -> str:
    """The path-safe component for ``name`` (see the module docstring); never empty.

    Raises:
        TypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"a name must be a string, not {type(name).__name__}")
    parts = []
    for i, ch in enumerate(name):
        if ch in _PLAIN and not (i == 0 and ch == "."):
            parts.append(ch)
        else:
            parts.append("".join(f"~{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
    text = "".join(parts) or "~"  # the empty name: "~" is never produced otherwise
    if len(text) <= max_length:
        return text
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    cut = text[: max(1, max_length - len(_HASHED) - len(digest))]
    tail = cut.rfind("~", len(cut) - 2)
    if tail != -1:  # never end inside an escape
        cut = cut[:tail]
    return f"{cut}{_HASHED}{digest}"


def check_distinct(names: Iterable[str], *, what: str = "names") -> None:
    """Refuse a set of names of which two would overwrite each other's files on a
    case-insensitive filesystem (macOS, Windows, some network shares): ``FIELD`` and ``field``.
    Only ASCII letters reach a file name as themselves (:func:`safe_name` escapes the rest), so
    the check compares the file names made, folded.

    Raises:
        UnsafePathError: naming both names.
    """
    seen: dict[str, str] = {}
    for name in names:
        key = safe_name(name).casefold()
        other = seen.setdefault(key, name)
        if other != name:
            raise UnsafePathError(f"{what} {other!r} and {name!r} differ only in letter case: their files would"
                                  " overwrite each other on a case-insensitive filesystem; rename one")


def original_name(component: str) -> str:
    """The name :func:`safe_name` mapped to ``component``.

    Raises:
        ValueError: ``component`` was shortened (it ends in a hash) or is not a safe name.
    """
    if component == "~":
        return ""
    if _HASHED in component:
        raise ArgumentError(f"{component!r} is a shortened name: the original is not recoverable")
    if any(ch not in _PLAIN and ch != "~" for ch in component) or _ESCAPE.sub("", component).count("~"):
        raise ArgumentError(f"{component!r} is not a name made by safe_name")
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(component):
        raw += component[pos:match.start()].encode()
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += component[pos:].encode()
    return raw.decode("utf-8", "surrogatepass")


def path_under(root: str | os.PathLike[str], *names: str) -> str:
    """``root/<safe_name(n)>/...``, checked to resolve inside ``root``.

    ``root`` is a local folder or an ``s3://bucket/prefix``; it is used as given (not made
    safe). Local paths are checked with symlinks resolved.

    Raises:
        UnsafePathError: the joined path resolves outside ``root``.
    """
    base = os.fspath(root).rstrip("/") or "/"
    path = "/".join([base, *(safe_name(n) for n in names)])
    check_under(base, path)
    return path


def check_under(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Raise :class:`UnsafePathError` unless ``path`` lies inside ``root`` once resolved."""
    root_text, path_text = os.fspath(root), os.fspath(path)
    if "://" in root_text or "://" in path_text:
        scheme, _, rest_root = root_text.partition("://")
        pscheme, _, rest_path = path_text.partition("://")
        r = posixpath.normpath("/" + rest_root)
        p = posixpath.normpath("/" + rest_path)
        inside = scheme == pscheme and posixpath.commonpath([r, p]) == r
    else:
        r = os.path.realpath(root_text)
        p = os.path.realpath(path_text)
        inside = os.path.commonpath([r, p]) == r
    if not inside:
        raise UnsafePathError(f"{path_text!r} is outside {root_text!r}")
