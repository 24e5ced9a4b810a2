"""The NDVI time series as a user gets it from the library and the command line: a tidy table
with real dates whose values are the stored statistics, and charts that plot exactly those
values, with gaps (never interpolation) where a date had no valid pixel."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from matplotlib.collections import PolyCollection
from shapely.geometry import box

from rasteret_core.errors import ChartError
from rasteret_core.products.timeseries import ndvi_statistics, ndvi_timeseries, read_stats, write_stats
from rasteret_core.products.timeseries_chart import marker_size, plot_timeseries, sparkline_png

ROOT = Path(__file__).resolve().parents[2]
FIELD = box(77.55, 13.03, 77.57, 13.05)
# (AOI, date, fraction of the pixels clouded): field_a's 2024-01-10 is fully cloudy, field_b has no
# scene on 2024-01-20 (an explicit empty row), field_b's 2024-01-15 is mostly cloudy
DAYS = [("field_a", "2024-01-05", 0.0), ("field_a", "2024-01-10", 1.0), ("field_a", "2024-01-15", 0.3),
        ("field_a", "2024-01-20", 0.0), ("field_b", "2024-01-05", 0.1), ("field_b", "2024-01-15", 0.95),
        ("field_b", "2024-01-20", None)]


def write_days(root: Path, days=DAYS, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for aoi, day, cloudy in days:
        if cloudy is None:
            write_stats([], str(root), date=day, aoi=aoi, geometry=FIELD)
            continue
        data = rng.uniform(-0.1, 0.9, (20, 30)).astype(np.float32)
        data[rng.uniform(size=data.shape) < cloudy] = np.nan
        inside = np.ones(data.shape, dtype=bool)
        inside[:3, :4] = False  # a corner outside the AOI
        row = {"scene_ids": [f"S2A_{day.replace('-', '')}"], "ndvi_path": None,
               **ndvi_statistics(data, inside, int(inside.sum()))}
        write_stats([row], str(root), date=day, aoi=aoi, geometry=FIELD)


def stored_rows(root: Path) -> dict[tuple[str, str], dict]:
    """Each statistics file read with pyarrow alone: (aoi, date) -> its row."""
    rows = {}
    for path in sorted(root.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[(row["aoi"], str(row["date"]))] = row
    return rows


@pytest.fixture
def stats(tmp_path) -> Path:
    write_days(tmp_path / "ndvi_stats")
    return tmp_path / "ndvi_stats"


def test_the_table_has_real_dates_and_the_stored_values(stats):
    table = ndvi_timeseries(stats)
    assert pd.api.types.is_datetime64_dtype(table["date"])
    assert list(table.columns[:9]) == ["aoi", "date", "mean", "median", "p10", "p90", "valid_fraction", "coverage",
                                       "scenes"]
    assert all(table[c].dtype == np.float64 for c in ("mean", "median", "p10", "p90", "valid_fraction", "coverage"))
    stored = stored_rows(stats)
    assert len(table) == len(stored) == len(DAYS)
    assert list(zip(table.aoi, table.date)) == sorted((a, pd.Timestamp(d)) for a, d in stored)  # by AOI, then date
    for row in table.itertuples():
        file_row = stored[(row.aoi, row.date.strftime("%Y-%m-%d"))]
        for name in ("mean", "median", "p10", "p90", "valid_fraction", "coverage"):
            expected = np.nan if file_row[name] is None else file_row[name]
            assert getattr(row, name) == pytest.approx(expected, nan_ok=True), (row.aoi, row.date, name)
        assert row.scenes == len(file_row["scene_ids"]) and row.scene_ids == ",".join(file_row["scene_ids"])
    # the fully cloudy and the empty dates have no statistics, and say so by their fractions
    empty = table[table["median"].isna()]
    assert sorted(zip(empty.aoi, empty.date.dt.strftime("%Y-%m-%d"))) == [("field_a", "2024-01-10"),
                                                                          ("field_b", "2024-01-20")]
    assert (empty.valid_fraction == 0).all()


def test_read_stats_dates_are_dates_and_still_compare_with_strings(stats):
    table = read_stats(stats)
    assert pd.api.types.is_datetime64_dtype(table["date"])
    assert (table["date"] == "2024-01-15").sum() == 2
    assert pd.api.types.is_datetime64_dtype(read_stats(stats.parent / "none")["date"])  # empty, same dtype


def test_the_median_line_band_and_markers_are_the_table_values(stats):
    table = ndvi_timeseries(stats)
    fig = plot_timeseries(table, "field_b")
    ax = fig.axes[0]
    rows = table[table.aoi == "field_b"]
    line = next(a for a in ax.get_lines() if a.get_label() == "median")
    x = np.asarray(line.get_xdata(), dtype="datetime64[ns]")
    np.testing.assert_array_equal(x, rows.date.to_numpy())
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), rows["median"].to_numpy(), equal_nan=True)

    band = next(c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == "p10-p90")
    corners = {tuple(np.round(v, 9)) for path in band.get_paths() for v in path.vertices}
    valid = rows[rows["median"].notna()]
    dates = [float(d) for d in mdates_num(valid.date)]
    for d, lo, hi in zip(dates, valid.p10, valid.p90):
        assert (round(d, 9), round(lo, 9)) in corners and (round(d, 9), round(hi, 9)) in corners

    dots = next(c for c in ax.collections if c.get_label() == "clear fraction")
    np.testing.assert_allclose(dots.get_offsets()[:, 1], valid["median"].to_numpy())
    np.testing.assert_allclose(dots.get_sizes(), marker_size(valid.valid_fraction.to_numpy()))


def mdates_num(dates):
    import matplotlib.dates as mdates

    return mdates.date2num(pd.to_datetime(dates).dt.to_pydatetime())


def test_a_cloudy_date_is_a_gap_never_interpolated(stats):
    table = ndvi_timeseries(stats)
    ax = plot_timeseries(table, "field_a").axes[0]
    line = next(a for a in ax.get_lines() if a.get_label() == "median")
    y = np.asarray(line.get_ydata(), float)
    assert np.isnan(y[1]) and np.isfinite(y[[0, 2, 3]]).all()  # 2024-01-10: NaN breaks the line there
    band = next(c for c in ax.collections if c.get_label() == "p10-p90")
    cloudy = mdates_num(pd.Series([pd.Timestamp("2024-01-10")]))[0]
    xs = np.concatenate([p.vertices[:, 0] for p in band.get_paths()])
    assert not np.isclose(xs, cloudy).any()  # the band has no vertex on the cloudy date
    assert len(band.get_paths()) == 2  # before and after the gap
    gaps = next(c for c in ax.collections if c.get_label() == "no valid pixels")
    assert np.isclose(gaps.get_offsets()[:, 0], cloudy).all() and len(gaps.get_offsets()) == 1


def test_dates_below_the_minimum_clear_fraction_are_gaps_too(stats):
    table = ndvi_timeseries(stats)
    ax = plot_timeseries(table, "field_b", min_valid_fraction=0.5).axes[0]
    y = np.asarray(next(a for a in ax.get_lines() if a.get_label() == "median").get_ydata(), float)
    rows = table[table.aoi == "field_b"]
    expected = np.where(rows.valid_fraction >= 0.5, rows["median"], np.nan)
    np.testing.assert_allclose(y, expected, equal_nan=True)


def test_one_panel_per_aoi_with_a_legend_of_the_markers(stats):
    fig = plot_timeseries(ndvi_timeseries(stats))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["field_a\n4 date(s), 1 without valid pixels", "field_b\n3 date(s), 1 without valid pixels"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "median NDVI" in labels and "100% clear" in labels and any("no valid" in t for t in labels)


def test_an_unknown_aoi_or_an_empty_table_is_refused_by_name(stats, tmp_path):
    with pytest.raises(ChartError, match="'field_z'.*field_a, field_b"):
        plot_timeseries(ndvi_timeseries(stats), "field_z")
    with pytest.raises(ChartError, match="empty"):
        plot_timeseries(ndvi_timeseries(tmp_path / "nothing"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0.0, 1.0)), min_size=1, max_size=12))
def test_any_sequence_of_clear_and_cloudy_dates_plots_its_medians_exactly(fractions):
    """Property: the line holds the median of every date with valid pixels and NaN elsewhere."""
    days = pd.date_range("2024-01-01", periods=len(fractions), freq="5D")
    medians = [np.nan if not f else 0.1 + 0.05 * i for i, f in enumerate(fractions)]
    table = pd.DataFrame({"aoi": "f", "date": days, "median": medians,
                          "p10": [m - 0.1 for m in medians], "p90": [m + 0.1 for m in medians],
                          "valid_fraction": [f or 0.0 for f in fractions]})
    ax = plot_timeseries(table, "f").axes[0]
    y = np.asarray(next(a for a in ax.get_lines() if a.get_label() == "median").get_ydata(), float)
    np.testing.assert_allclose(y, medians, equal_nan=True)
    png = sparkline_png(table, "f")
    assert png.startswith(b"\x89PNG")


def test_the_command_writes_the_chart_and_the_table(stats, tmp_path):
    out, csv = tmp_path / "chart.png", tmp_path / "table.csv"
    done = subprocess.run([sys.executable, "-m", "rasteret_core.cli", "timeseries", str(stats), "--out", str(out),
                           "--csv", str(csv)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\x89PNG") and "field_a" in done.stdout
    written = pd.read_csv(csv, parse_dates=["date"])
    expected = ndvi_timeseries(stats)
    assert list(written.columns) == list(expected.columns)
    np.testing.assert_allclose(written["median"], expected["median"], equal_nan=True)
    assert list(written.date) == list(expected.date)



def test_the_command_names_an_unknown_aoi_and_exits_3_on_an_empty_folder(stats, tmp_path):
    from click.testing import CliRunner

    from rasteret_core.cli import main

    unknown = CliRunner().invoke(main, ["timeseries", str(stats), "--aoi", "nope"])
    assert unknown.exit_code == 1 and unknown.stderr.strip().splitlines() == [
        f"rasteret: error: no statistics for AOI(s) nope in {stats}"]
    empty = CliRunner().invoke(main, ["timeseries", str(tmp_path / "none")])
    assert empty.exit_code == 3 and "no statistics" in empty.stderr
    as_json = CliRunner().invoke(main, ["timeseries", str(stats), "--aoi", "field_a", "--json"])
    rows = __import__("json").loads(as_json.stdout)["rows"]
    assert [r["date"] for r in rows] == ["2024-01-05", "2024-01-10", "2024-01-15", "2024-01-20"]
    assert rows[1]["median"] is None  # the cloudy date: null, not NaN (which is not JSON)


def test_dates_are_days_not_instants(stats):
    table = ndvi_timeseries(stats)
    assert (table.date == table.date.dt.normalize()).all()
    assert table.date.min().date() == dt.date(2024, 1, 5)
