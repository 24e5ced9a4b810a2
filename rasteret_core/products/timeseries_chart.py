"""Charts of the NDVI time series per AOI, drawn with matplotlib's Figure API (no pyplot: the
PNG is rendered by the Agg canvas, no display is needed and the caller's backend is untouched).

One panel per AOI: the median NDVI as a line, the p10-p90 range as a band (and a whisker per
date, so a date between two cloudy ones still shows its range), one marker per date whose
size and opacity grow with the clear (valid) fraction of the AOI. A date without any valid
pixel (cloudy, or no scene covered the AOI) is a gap in the line and band, never
interpolated across, and is marked by an ``x`` on the lower edge. Dates whose valid fraction
is below ``min_valid_fraction`` are treated the same way (their statistics stay in the
table). The table comes from :func:`rasteret_core.products.timeseries.ndvi_timeseries`.
"""

from __future__ import annotations

import io
import os
from typing import Any, Iterable

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from rasteret_core.errors import ChartError

MEDIAN_COLOUR = "#1a7837"
BAND_COLOUR = "#a6dba0"
GAP_COLOUR = "#7f7f7f"
Y_RANGE = (-0.2, 1.0)
"""The NDVI axis of every panel (widened when a value falls outside), so AOIs compare at a glance."""


def series(table: Any, aoi: str, min_valid_fraction: float = 0.0) -> dict[str, np.ndarray]:
    """What the panel of ``aoi`` plots, as arrays over its dates (sorted): ``dates``
    (``datetime64``), ``median``, ``p10``, ``p90`` (NaN where the line has a gap),
    ``valid_fraction`` and ``gap`` (True where no valid value is drawn)."""
    rows = table[table["aoi"] == aoi].sort_values("date", kind="stable")
    if rows.empty:
        known = sorted(set(table["aoi"]))
        raise ChartError(f"AOI {aoi!r} has no rows in the time series table (AOIs: {', '.join(known[:10]) or 'none'})")
    valid = rows["valid_fraction"].to_numpy(dtype=float)
    median = rows["median"].to_numpy(dtype=float)
    gap = ~np.isfinite(median) | (valid <= 0) | (valid < min_valid_fraction)

    def masked(name: str) -> np.ndarray:
        values = rows[name].to_numpy(dtype=float).copy()
        values[gap] = np.nan
        return values

    return {"dates": rows["date"].to_numpy(dtype="datetime64[ns]"), "median": masked("median"),
            "p10": masked("p10"), "p90": masked("p90"), "valid_fraction": valid, "gap": gap}


def marker_size(valid_fraction: np.ndarray) -> np.ndarray:
    """Marker area (points^2) for a clear fraction: 12 when (nearly) nothing was clear, 90 when all was."""
    return 12.0 + 78.0 * np.clip(valid_fraction, 0.0, 1.0)


def marker_alpha(valid_fraction: np.ndarray) -> np.ndarray:
    """Marker opacity for a clear fraction: 0.25 to 1."""
    return 0.25 + 0.75 * np.clip(valid_fraction, 0.0, 1.0)


def draw_panel(ax: Any, table: Any, aoi: str, *, min_valid_fraction: float = 0.0, compact: bool = False,
               label: str = "NDVI") -> None:
    """Draw the time series of ``aoi`` on the matplotlib Axes ``ax`` (see the module doc).

    The artists carry labels tests and callers can find them by: ``median`` (Line2D),
    ``p10-p90`` (the band), ``clear fraction`` (the markers), ``no valid pixels`` (gaps).
    ``compact``: no axes, text or legend (a sparkline). ``label``: the index on the y axis.
    """
    s = series(table, aoi, min_valid_fraction)
    x = s["dates"]
    ok = ~s["gap"]
    ax.fill_between(x, s["p10"], s["p90"], where=ok, interpolate=False, color=BAND_COLOUR, alpha=0.6,
                    linewidth=0, label="p10-p90")
    if ok.any() and not compact:
        ax.vlines(x[ok], s["p10"][ok], s["p90"][ok], color=BAND_COLOUR, linewidth=2, label="p10-p90 per date")
    ax.plot(x, s["median"], color=MEDIAN_COLOUR, linewidth=1.8, label="median")  # NaN breaks the line
    colours = np.zeros((len(x), 4))
    colours[:] = mcolors.to_rgba(MEDIAN_COLOUR)
    colours[:, 3] = marker_alpha(s["valid_fraction"])
    ax.scatter(x[ok], s["median"][ok], s=marker_size(s["valid_fraction"][ok]), c=colours[ok],
               edgecolors="none", zorder=3, label="clear fraction")
    lo = min(Y_RANGE[0], np.nanmin(s["p10"], initial=Y_RANGE[0]))
    hi = max(Y_RANGE[1], np.nanmax(s["p90"], initial=Y_RANGE[1]))
    ax.set_ylim(lo, hi)
    if (~ok).any():
        ax.scatter(x[~ok], np.full(int((~ok).sum()), lo + 0.03 * (hi - lo)), marker="x", s=28,
                   color=GAP_COLOUR, zorder=3, label="no valid pixels", clip_on=False)
    if len(x) == 1:  # one date: give the axis a width so the point is not on the frame
        ax.set_xlim(x[0] - np.timedelta64(3, "D"), x[0] + np.timedelta64(3, "D"))
    if compact:
        ax.set_axis_off()
        return
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylabel(label)
    ax.axhline(0.0, color="#bbbbbb", linewidth=0.6, zorder=0)
    ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.6)
    dates, gaps = len(x), int((~ok).sum())
    ax.set_title(f"{aoi}\n{dates} date(s), {gaps} without valid pixels", fontsize=10)


def plot_timeseries(table: Any, aois: str | Iterable[str] | None = None, *, min_valid_fraction: float = 0.0,
                    ncols: int = 1, panel_size: tuple[float, float] = (8.0, 3.2), dpi: int = 100,
                    label: str = "NDVI") -> Figure:
    """A matplotlib Figure with one panel per AOI (all AOIs of ``table`` by default).

    ``table``: :func:`rasteret_core.products.timeseries.ndvi_timeseries`'s DataFrame. ``aois``: one
    name or several. ``min_valid_fraction``: dates with a smaller clear fraction are drawn as
    gaps. The legend under the panels explains the markers (size and opacity: clear fraction).
    ``label``: the index plotted (the table of another index has the same columns).

    Raises:
        ChartError: the table has no rows, or an AOI asked for has none.
    """
    if table is None or len(table) == 0:
        raise ChartError("the time series table is empty: nothing to plot (run ndvi_stats first)")
    names = sorted(set(table["aoi"])) if aois is None else [aois] if isinstance(aois, str) else list(aois)
    if not names:
        raise ChartError("no AOI to plot")
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.7), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # rendered by Agg: no display needed, the caller's pyplot backend untouched
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=False)
    for ax, name in zip(axes.flat, names):
        draw_panel(ax, table, name, min_valid_fraction=min_valid_fraction, label=label)
    for ax in list(axes.flat)[len(names):]:
        ax.set_axis_off()
    fig.legend(handles=legend_handles(label), loc="outside lower center", ncols=len(legend_handles()), fontsize=8,
               frameon=False)
    return fig


def legend_handles(label: str = "NDVI") -> list[Any]:
    """The legend of every chart: line, band, marker sizes (clear fraction) and gaps."""
    def dot(fraction: float) -> Line2D:
        rgba = mcolors.to_rgba(MEDIAN_COLOUR, float(marker_alpha(np.array(fraction))))
        return Line2D([], [], linestyle="none", marker="o", markersize=float(np.sqrt(marker_size(np.array(fraction)))),
                      markerfacecolor=rgba, markeredgecolor="none", label=f"{fraction:.0%} clear")

    return [Line2D([], [], color=MEDIAN_COLOUR, linewidth=1.8, label=f"median {label}"),
            Patch(color=BAND_COLOUR, alpha=0.6, label="p10-p90"),
            dot(1.0), dot(0.5), dot(0.1),
            Line2D([], [], linestyle="none", marker="x", color=GAP_COLOUR, label="no valid pixels (gap)")]


def png_bytes(fig: Figure, *, colours: int | None = None) -> bytes:
    """``fig`` as PNG bytes; ``colours``: reduce to a palette of that many colours (smaller files)."""
    if colours is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    from PIL import Image  # a dependency of matplotlib

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()  # straight from the drawn pixels: no full-colour PNG written and read back
    # median cut (the default) keeps a legend's exact colours, which the faster octree does not
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).quantize(colors=colours)
    out = io.BytesIO()
    image.save(out, format="PNG")  # optimize=True cost 6x the encode for 5 % of the size
    return out.getvalue()


def sparkline_png(table: Any, aoi: str, *, size: tuple[int, int] = (240, 48), min_valid_fraction: float = 0.0,
                  colours: int = 6) -> bytes:
    """A small chart of ``aoi`` without axes or text (a few hundred bytes as a palette PNG):
    the same line, band, markers and gap marks as :func:`plot_timeseries`, on the fixed NDVI
    range :data:`Y_RANGE`."""
    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    draw_panel(ax, table, aoi, min_valid_fraction=min_valid_fraction, compact=True)
    return png_bytes(fig, colours=colours)


def save(fig: Figure, path: str | os.PathLike[str], **savefig_kwargs: Any) -> str:
    """Write ``fig`` to ``path`` (the format from the suffix: .png, .svg, .pdf); returns the path."""
    path = os.fspath(path)
    fig.savefig(path, **{"dpi": fig.dpi, **savefig_kwargs})
    return path
