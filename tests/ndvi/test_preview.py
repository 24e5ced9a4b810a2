"""NDVI previews a person can read: a diverging colour map with a labelled colour bar, at least
256 px on the map's long side, and clouds, no data and outside-the-AOI in their own colours."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image

from rasteret_core.products.ndvi import NdviRaster
from rasteret_core.products.ndvi_preview import (
    CLASS_COLOURS, MIN_LONG_SIDE, preview_figure, preview_png, raster_preview_png,
)


def field(shape=(12, 20)):
    """A small AOI raster (smaller than a preview: it must be enlarged) with every kind of pixel."""
    data = np.tile(np.linspace(-0.1, 0.85, shape[1], dtype=np.float32), (shape[0], 1))
    inside = np.ones(shape, dtype=bool)
    inside[:, :3] = False  # outside the AOI
    covered = inside.copy()
    covered[-3:, :] = False  # no scene here
    cloud = np.zeros(shape, dtype=bool)
    cloud[2:5, 8:12] = True  # covered, but cloud-masked
    data[~inside | ~covered | cloud] = np.nan
    return data, inside, covered, cloud


def rgb(name):
    return tuple(round(255 * c) for c in to_rgb(CLASS_COLOURS[name]))


def test_a_small_field_is_enlarged_to_at_least_256_pixels():
    data, inside, covered, _ = field()
    fig = preview_figure(data, inside=inside, covered=covered, title="NDVI f 2024-01-05")
    box = fig.axes[0].get_window_extent()  # the map, after layout, in output pixels
    assert max(box.width, box.height) >= MIN_LONG_SIDE
    image = Image.open(io.BytesIO(preview_png(data, inside=inside, covered=covered)))
    assert max(image.size) >= MIN_LONG_SIDE


def test_clouds_no_data_and_outside_have_their_own_colours_and_legend_entries():
    data, inside, covered, cloud = field()
    fig = preview_figure(data, inside=inside, covered=covered, title="t")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [f"outside the AOI: {(~inside).sum()} px", f"no data (no scene): {(inside & ~covered).sum()} px",
                      f"masked (cloud, shadow): {cloud.sum()} px"]
    for palette in (None, 256):  # full colour, and the palette PNG the pipeline stores
        png = Image.open(io.BytesIO(preview_png(data, inside=inside, covered=covered, colours=palette)))
        colours = {c for _, c in png.convert("RGB").getcolors(1 << 20)}
        for name in ("outside the AOI", "no data (no scene)", "masked (cloud, shadow)"):
            assert rgb(name) in colours, (name, palette)
    # sample the map's pixels where each class is: the centre of the cloud block is the cloud colour
    ax = fig.axes[0]
    fig.canvas.draw()
    px = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    for (row, col), name in [((3, 10), "masked (cloud, shadow)"), ((10, 10), "no data (no scene)"),
                             ((6, 1), "outside the AOI")]:
        x, y = ax.transData.transform((col, row))
        assert tuple(px[int(px.shape[0] - y), int(x)]) == rgb(name), name


def test_without_a_coverage_mask_clouds_and_no_data_are_one_named_class():
    data, inside, _, _ = field()
    labels = [t.get_text() for t in preview_figure(data, inside=inside).legends[0].get_texts()]
    assert [label.split(":")[0] for label in labels] == ["outside the AOI", "masked or no data"]


def test_the_colour_bar_is_diverging_and_labelled_in_ndvi():
    data, inside, covered, _ = field()
    fig = preview_figure(data, inside=inside, covered=covered)
    bar = fig.axes[1]
    ticks = [float(t.get_text().replace("−", "-")) for t in bar.get_yticklabels() if t.get_text()]
    assert ticks[0] == -0.2 and ticks[-1] == 0.9 and 0.0 in ticks
    assert bar.get_ylabel() == "NDVI"
    image = fig.axes[0].get_images()[0]
    low, high = image.cmap(image.norm(np.array([-0.15, 0.85])))
    assert low[0] > low[1] and high[1] > high[0]  # red for bare or water, green for vegetation


def test_the_title_names_aoi_date_and_scenes():
    data, inside, covered, _ = field()
    raster = NdviRaster("field_a", "S2A_1,S2B_2", dt.datetime(2024, 1, 5, 5, 12), data, None, 32643,
                        scene_ids=["S2A_1", "S2B_2"], inside=inside, covered=covered)
    png = raster_preview_png(raster)
    assert png.startswith(b"\x89PNG")
    from rasteret_core.products.ndvi_preview import raster_title

    title = raster_title("field_a", "2024-01-05", raster.scene_ids, 0.5)
    assert title.startswith("NDVI field_a 2024-01-05\n2 scene(s): S2A_1, S2B_2") and "50% of the AOI valid" in title
