"""Readable NDVI previews: one map of an AOI and date as a PNG (matplotlib Figure API, Agg canvas).

The colour map is matplotlib's diverging ``RdYlGn`` over NDVI -0.2 .. 0.9 (:data:`NDVI_RANGE`):
real land values (bare soil about 0.1-0.3, crops and forest 0.5-0.9) then span the whole ramp
instead of its upper half, its light centre (0.35) falls where bare soil gives way to
vegetation, and water or built-up pixels (below 0) read red. Values beyond the range take the
end colours (the colour bar's arrows). Pixels without a value are told apart by colours that
are not on the ramp, each in the legend: outside the AOI (light grey), no data (no scene
covered the pixel, dark grey) and masked (covered but cloud, shadow or cirrus, blue). Without
a per-pixel coverage mask the last two are one class, "masked or no data".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from rasteret_core.errors import ArgumentError
from rasteret_core.products.timeseries_chart import png_bytes

NDVI_CMAP = "RdYlGn"
NDVI_RANGE = (-0.2, 0.9)
NDVI_STEP = 0.05
"""The map's colours are classes 0.05 wide (22 over the range): a value is read off the colour
bar to 0.05, and the PNG stays small."""
CLASS_COLOURS = {
    "outside the AOI": "#e3e3e3",
    "no data (no scene)": "#3b3b3b",
    "masked (cloud, shadow)": "#4a90e2",
    "masked or no data": "#7e57c2",
}
"""Colours of the pixels without an NDVI value: none of them is on the ``RdYlGn`` ramp."""
MIN_LONG_SIDE = 256
"""The map's long side in the PNG, in pixels, at least (small AOIs are enlarged, nearest neighbour)."""


def pixel_classes(data: np.ndarray, inside: np.ndarray | None = None,
                  covered: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Boolean masks of the pixels without a value, by :data:`CLASS_COLOURS` name (only the
    classes that apply: ``covered`` None merges masked and no data)."""
    finite = np.isfinite(data)
    inside = np.ones(data.shape, dtype=bool) if inside is None else np.asarray(inside, dtype=bool)
    missing = inside & ~finite
    classes = {"outside the AOI": ~inside}
    if covered is None:
        classes["masked or no data"] = missing
    else:
        covered = np.asarray(covered, dtype=bool)
        classes["no data (no scene)"] = missing & ~covered
        classes["masked (cloud, shadow)"] = missing & covered
    return classes


def preview_figure(data: np.ndarray, *, inside: np.ndarray | None = None, covered: np.ndarray | None = None,
                   title: str | None = None, dpi: int = 100, label: str = "NDVI") -> Figure:
    """A Figure of one NDVI array (float, NaN without a value): the map with a colour bar
    labelled in NDVI values, a legend of the pixels without a value, ``title`` above.

    ``inside``: the AOI's pixels (default: all); ``covered``: the pixels some scene covered
    (default: unknown, see the module doc). ``label``: the index shown (another index of the
    catalogue keeps the same ramp and range).
    """
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or not data.size:
        raise ArgumentError(f"a preview needs a non-empty 2-D NDVI array, not shape {data.shape}")
    fig, ax, bar_ax = _layout(data.shape, dpi, titled=bool(title))
    bounds = np.round(np.arange(NDVI_RANGE[0], NDVI_RANGE[1] + NDVI_STEP / 2, NDVI_STEP), 2)
    cmap = matplotlib.colormaps[NDVI_CMAP].resampled(len(bounds) - 1)
    cmap = cmap.with_extremes(under=cmap(0), over=cmap(cmap.N - 1))  # beyond the range: the end colours
    norm = BoundaryNorm(bounds, cmap.N)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=norm, interpolation="nearest")
    classes = pixel_classes(data, inside, covered)
    overlay = np.zeros(data.shape, dtype=np.int16)  # 0: a value, i: the i-th class
    for i, mask in enumerate(classes.values(), start=1):
        overlay[mask] = i
    colours = ListedColormap(["#00000000", *[CLASS_COLOURS[name] for name in classes]])
    ax.imshow(overlay, cmap=colours, vmin=-0.5, vmax=len(classes) + 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.colorbar(image, cax=bar_ax, extend="both")
    bar.set_label(label)
    bar.set_ticks(np.round(np.arange(-0.2, 0.91, 0.1), 1))
    counts = {name: int(mask.sum()) for name, mask in classes.items()}
    handles = [Patch(facecolor=CLASS_COLOURS[name], edgecolor="#888888", label=f"{name}: {counts[name]} px")
               for name in classes]
    fig.legend(handles=handles, loc="lower center", ncols=min(2, len(handles)), fontsize=8, frameon=False,
               title=f"no {label} value", title_fontsize=8, bbox_to_anchor=(0.5, 0.0))
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def preview_png(data: np.ndarray, *, inside: np.ndarray | None = None, covered: np.ndarray | None = None,
                title: str | None = None, colours: int | None = 256, label: str = "NDVI") -> bytes:
    """:func:`preview_figure` as PNG bytes, as a palette of ``colours`` colours (less than half
    the size of full colour; the map itself has fewer than 30; None keeps full colour)."""

    return png_bytes(preview_figure(data, inside=inside, covered=covered, title=title, label=label), colours=colours)


def raster_title(aoi: str, date: str, scene_ids: Sequence[str], valid_fraction: float | None = None,
                 label: str = "NDVI") -> str:
    """``<label> <aoi> <date>`` over the scenes used (at most three named) and the clear share."""
    ids = list(scene_ids)
    named = ", ".join(ids[:3]) + (f" +{len(ids) - 3} more" if len(ids) > 3 else "")
    clear = f", {valid_fraction:.0%} of the AOI valid" if valid_fraction is not None else ""
    return f"{label} {aoi} {date}\n{len(ids)} scene(s): {named or 'none'}{clear}"


def raster_preview_png(raster: Any, aoi: str | None = None, date: str | None = None, *, label: str = "NDVI",
                       **kwargs: Any) -> bytes:
    """The preview of an :class:`rasteret_core.products.ndvi.NdviRaster` (its ``inside`` and, when
    known, ``covered`` masks), titled with its AOI, date and scenes."""
    aoi = aoi if aoi is not None else raster.geometry_id
    date = date if date is not None else raster.datetime.date().isoformat()
    inside = getattr(raster, "inside", None)
    # the whole AOI's pixels: the grid may be cut to where the scenes are
    aoi_pixels = getattr(raster, "aoi_pixels", None) or (int(inside.sum()) if inside is not None else raster.data.size)
    valid = int(np.isfinite(raster.data).sum())
    title = raster_title(aoi, date, raster.scene_ids or [raster.scene_id], valid / aoi_pixels if aoi_pixels else 0.0,
                         label)
    return preview_png(raster.data, inside=inside, covered=getattr(raster, "covered", None), title=title,
                       label=label, **kwargs)


MAP_SIDE = 400
"""The map's long side in the PNG, in pixels (small AOIs are enlarged, large ones reduced, nearest)."""
_MARGINS = {"left": 16, "gap": 14, "bar": 16, "bar_labels": 64, "top": 44, "untitled_top": 12, "bottom": 74}
"""Fixed margins in pixels around the map: the layout is computed once, not by a layout engine
(constrained layout drew each preview three times: 0.7 s a map, most of a pipeline date's time)."""


def _layout(shape: tuple[int, int], dpi: int, *, titled: bool) -> tuple[Figure, Any, Any]:
    """A Figure sized to the map's aspect ratio, with the map's and the colour bar's axes placed."""
    height, width = shape
    side = max(MAP_SIDE, MIN_LONG_SIDE)
    map_w, map_h = side * width / max(shape), side * height / max(shape)
    m = _MARGINS
    top = m["top"] if titled else m["untitled_top"]
    area_w, area_h = max(map_w, 440), max(map_h, 200)  # a thin AOI still gets a readable colour bar
    fig_w = m["left"] + area_w + m["gap"] + m["bar"] + m["bar_labels"]
    fig_h = top + area_h + m["bottom"]
    fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)  # drawn by Agg (no display)
    x0, y0 = m["left"] + (area_w - map_w) / 2, m["bottom"] + (area_h - map_h) / 2
    ax = fig.add_axes((x0 / fig_w, y0 / fig_h, map_w / fig_w, map_h / fig_h))
    bar_x, bar_h = m["left"] + area_w + m["gap"], area_h * 0.9
    bar_ax = fig.add_axes((bar_x / fig_w, (m["bottom"] + (area_h - bar_h) / 2) / fig_h, m["bar"] / fig_w, bar_h / fig_h))
    return fig, ax, bar_ax
