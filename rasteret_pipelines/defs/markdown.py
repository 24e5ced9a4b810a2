"""Markdown metadata shown in the Dagster UI, built from third-party text (scene ids, error
messages, check failure values) that must render as text: never as an image, a link or HTML."""

from __future__ import annotations

import re
from typing import Any, Iterable

# the characters that make links and images ([ ] !), autolinks and raw HTML (< >), code (`),
# table cells (|) and escapes (\\); emphasis and headings are left alone, they load nothing,
# and ids such as S2A_29RKH_20200219_0_L2A stay searchable as written
_SPECIAL = re.compile(r"([\\`\[\]<>!|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def md_text(value: Any, max_length: int | None = None) -> str:
    """``value`` as literal Markdown text: the characters of links, images, raw HTML, code
    and table cells backslash-escaped (CommonMark renders an escaped punctuation character as
    itself, so ``![](url)``, ``<img>``, ``[x](url)`` and ``|`` lose their meaning), line
    breaks and control characters made spaces."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return _SPECIAL.sub(r"\\\1", text)


def md_table(columns: Iterable[str], rows: Iterable[Iterable[Any]], *, max_cell: int = 160) -> str:
    """A Markdown table whose cells are escaped with :func:`md_text`."""
    columns = list(columns)
    head = "| " + " | ".join(md_text(c) for c in columns) + " |\n|" + " --- |" * len(columns)
    body = ["| " + " | ".join(md_text(v, max_cell) for v in row) + " |" for row in rows]
    return "\n".join([head, *body])
