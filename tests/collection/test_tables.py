"""Collections to and from tables, against the local object store: a plain Arrow table of items
(and a stac-geoparquet file) becomes a collection whose headers equal a STAC build's; a
collection is an Arrow stream and a stac-geoparquet file that stac-geoparquet and DuckDB read."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from rasteret_core.cog import ReaderOptions, read_window
from rasteret_core.collection import Collection
from rasteret_core.collection.harvest import harvest
from rasteret_core.collection.tables import build_from_table, ColumnMap, table_items, to_stac_geoparquet
from rasteret_core.errors import ArgumentError
from rasteret_core.stac.sources import DataSources
from tests.load.conftest import BANDS, real_items, S2_DIR

duckdb = pytest.importorskip("duckdb")
stac_geoparquet = pytest.importorskip("stac_geoparquet")
S2 = DataSources.SENTINEL2


def _plain_table(items: list[dict]) -> pa.Table:
    """What a user's own catalogue table looks like: their names, WKB footprints, one href column per band."""
    return pa.table({
        "scene": [i["id"] for i in items],
        "acquired": [dt.datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00")) for i in items],
        "footprint": [shapely.to_wkb(shapely.geometry.shape(i["geometry"])) for i in items],
        "clouds": [i["properties"].get("eo:cloud_cover") for i in items],
        **{f"{band.lower()}_url": [i["assets"][S2.band_map[band]]["href"] for i in items] for band in BANDS},
    })


COLUMNS = ColumnMap(bands={band: f"{band.lower()}_url" for band in BANDS}, id="scene", datetime="acquired",
                    geometry="footprint", cloud_cover="clouds")


@pytest.fixture(scope="module")
def options(object_store) -> ReaderOptions:
    return ReaderOptions(endpoint_url=object_store.endpoint_url)


@pytest.fixture(scope="module")
def from_table(options, tmp_path_factory) -> Collection:
    return build_from_table(_plain_table(real_items()), S2, root=tmp_path_factory.mktemp("tables") / "t",
                            columns=COLUMNS, name="from_table", reader_options=options)


def test_a_plain_table_builds_the_collection_a_stac_build_would(from_table, options):
    truth = {s.id: s for s in harvest(real_items(), S2, bands=BANDS, reader_options=options, progress=False).scenes}
    got = {s.id: s for s in from_table.scenes()}
    assert got.keys() == truth.keys() and len(got) == 2
    for scene_id, scene in got.items():
        assert scene.datetime == truth[scene_id].datetime
        assert scene.cloud_cover == truth[scene_id].cloud_cover
        for band in BANDS:  # the same header, so the same tile offsets
            assert scene.bands[band].header.to_dict() == truth[scene_id].bands[band].header.to_dict()


def test_pixels_of_a_table_built_collection_equal_rasterio(from_table, options):
    scene = from_table.scenes()[0]
    header = scene.bands["B04"].header
    window = Window(300, 500, 300, 200)
    got = read_window(header, window, endpoint_url=options.endpoint_url)[0]
    name = scene.bands["B04"].href.rsplit("/", 1)[-1]
    with rasterio.open(S2_DIR / name) as src:
        np.testing.assert_array_equal(got, src.read(1, window=window))


def test_a_collection_is_an_arrow_stream_duckdb_reads(from_table):
    table = pa.table(from_table)  # through __arrow_c_stream__
    assert table.equals(from_table.read_table())
    stream = from_table  # DuckDB scans the collection's Arrow stream by its variable name
    rows = duckdb.sql("select id, \"eo:cloud_cover\" from stream order by id").fetchall()
    assert [r[0] for r in rows] == sorted(s.id for s in from_table.scenes())


def test_stac_geoparquet_out_and_back_in(from_table, options, tmp_path):
    path = to_stac_geoparquet(from_table, tmp_path / "items.parquet")
    items = [dict(i) for i in stac_geoparquet.arrow.stac_table_to_items(pa.parquet.read_table(path))]
    assert sorted(i["id"] for i in items) == sorted(s.id for s in from_table.scenes())
    assert all(i["assets"][S2.band_map["B04"]]["href"].startswith("s3://public/") for i in items)
    ((count, first),) = duckdb.sql(f"select count(*), min(id) from read_parquet('{path}')").fetchall()
    assert (count, first) == (2, min(i["id"] for i in items))
    # and the file builds a collection again, without a column map
    again = build_from_table(path, S2, root=tmp_path / "again", bands=BANDS, reader_options=options)
    assert sorted(s.id for s in again.scenes()) == sorted(i["id"] for i in items)


def test_a_missing_column_or_a_bad_row_is_named(tmp_path):
    table = _plain_table(real_items())
    with pytest.raises(ArgumentError, match="no column.*'b04_url'"):
        table_items(table.drop_columns(["b04_url"]), S2, COLUMNS)
    broken = table.set_column(table.column_names.index("footprint"), "footprint", pa.array([b"\x00", b"\x01"]))
    with pytest.raises(ArgumentError, match="row 0 .*not a geometry"):
        table_items(broken, S2, COLUMNS)
    with pytest.raises(ArgumentError, match="not stac-geoparquet"):
        table_items(table, S2)
