"""Markdown metadata shown in the Dagster UI, built from third-party text (scene ids, error
messages, check failure values) that must render as text: never as an image, a link or HTML."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable

from rasteret_core.products.timeseries_chart import sparkline_png

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
    """A Markdown table whose cells are escaped with :func:`md_text` (a date-time at midnight,
    such as the statistics' ``date``, shown as its date)."""
    columns = list(columns)
    head = "| " + " | ".join(md_text(c) for c in columns) + " |\n|" + " --- |" * len(columns)
    body = ["| " + " | ".join(md_text(_day(v), max_cell) for v in row) + " |" for row in rows]
    return "\n".join([head, *body])


def _day(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value == value and value.time() == dt.time() and value.tzinfo is None:
        return value.date().isoformat()
    return value


INLINE_LIMIT = 999
"""The Dagster UI (1.13) renders a Markdown metadata value in place, on the asset page and in
the events list, only below 1000 characters; a longer one waits behind "[Show Markdown]"."""


def png_markdown(png: bytes, alt: str, caption: str | None = None) -> str:
    """A PNG as an inline ``data:`` image (the UI's sanitiser allows ``data`` sources), with
    an escaped caption above it."""
    import base64

    image = f"![{md_text(alt, 80)}](data:image/png;base64,{base64.b64encode(png).decode()})"
    return f"**{md_text(caption, 300)}**\n\n{image}" if caption else image


def sparkline_markdown(table: Any, aoi: str, summary: str, *, limit: int = INLINE_LIMIT) -> str:
    """A small chart of ``aoi``'s time series and a one-line ``summary``, kept under ``limit``
    characters so the UI shows it in place: smaller images, then only the latest dates (said
    in the text), then the summary alone."""

    rows = table[table["aoi"] == aoi].sort_values("date")
    keep = len(rows)
    while keep >= 1:
        recent = rows.tail(keep)
        note = "" if keep == len(rows) else f" (chart: latest {keep} of {len(rows)} dates)"
        for size, colours in (((240, 48), 6), ((240, 48), 4), ((200, 40), 4), ((160, 32), 4)):
            text = png_markdown(sparkline_png(recent, aoi, size=size, colours=colours), f"NDVI {aoi}")
            text += f"\n\n{md_text(summary + note)}"
            if len(text) <= limit:
                return text
        keep //= 2
    return md_text(summary, limit)
