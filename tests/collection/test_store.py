"""GeoParquet collection store: round trips, interoperability, per-date atomic replacement."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import shapely

from rasteret_core.collection import build_collection, Collection
from rasteret_core.collection.harvest import harvest
from rasteret_core.stac.sources import DataSource

from .conftest import S2_BAND_MAP

JANUARY = ("2024-01-01", "2024-01-31")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(s2_items_file) -> DataSource:
    return DataSource.from_items_file(s2_items_file, S2_BAND_MAP, name="s2-synthetic", collection="sentinel-2-l2a")


@pytest.fixture
def built(tmp_path, source) -> Collection:
    report = build_collection(source, root=tmp_path / "coll", date_range=JANUARY, progress=False)
    assert report.scenes == 6 and report.failures == []
    return report.collection


def _partition_files(root: Path) -> list[Path]:
    return sorted(root.glob("date=*/part.parquet"))


def test_build_writes_one_hive_partition_per_date(built):
    root = Path(built.root)
    assert [p.parent.name for p in _partition_files(root)] == ["date=2024-01-05", "date=2024-01-10", "date=2024-01-15"]
    assert built.dates() == [dt.date(2024, 1, 5), dt.date(2024, 1, 10), dt.date(2024, 1, 15)]
    assert len(built) == 6


def test_geoparquet_metadata_validates(built):
    for path in _partition_files(Path(built.root)):
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        assert schema.metadata[b"rasteret_schema_version"] == b"1"
        geo = json.loads(schema.metadata[b"geo"])
        assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
        col = geo["columns"]["geometry"]
        assert col["encoding"] == "WKB" and col["geometry_types"] == ["Polygon"]
        assert col["crs"]["id"] == {"authority": "EPSG", "code": 4326}
        covering = col["covering"]["bbox"]
        assert covering == {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
        assert pa.types.is_binary(schema.field("geometry").type)
        assert schema.field("bbox").type == pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
        assert schema.field("datetime").type == pa.timestamp("us", tz="UTC")
        table = pf.read()
        geoms = shapely.from_wkb(table.column("geometry").to_pylist())
        for geom, box in zip(geoms, table.column("bbox").to_pylist()):
            assert (box["xmin"], box["ymin"], box["xmax"], box["ymax"]) == pytest.approx(geom.bounds)
        assert col["bbox"] == pytest.approx(list(shapely.total_bounds(geoms)))


def test_collection_opens_with_geopandas_and_pyarrow_dataset(built):
    gdf = gpd.read_parquet(built.root)
    assert len(gdf) == 6 and gdf.crs.to_epsg() == 4326
    assert set(gdf["id"]) == {s.id for s in built.scenes()}
    assert {"B04", "B08", "SCL", "eo:cloud_cover", "platform", "assets", "date"} <= set(gdf.columns)
    table = pads.dataset(built.root, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 6
    typed = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    one_day = pads.dataset(built.root, format="parquet", partitioning=typed).to_table(
        filter=pads.field("date") == dt.date(2024, 1, 10))
    assert one_day.num_rows == 2
    assert built.to_geopandas().shape[0] == 6


def test_band_columns_hold_headers_that_round_trip(built, s2_items, source):
    fresh = {s.id: s for s in harvest(s2_items, source, progress=False).scenes}
    stored = built.scenes()
    assert len(stored) == 6
    for scene in stored:
        want = fresh[scene.id]
        assert scene.datetime == want.datetime and scene.cloud_cover == want.cloud_cover
        assert scene.geometry.equals(want.geometry)
        assert scene.properties["platform"] == want.properties["platform"]
        assert scene.properties["assets"] == want.properties["assets"]
        for band in ("B04", "B08", "SCL"):
            assert scene.bands[band].header == want.bands[band].header
            assert (scene.bands[band].scale, scene.bands[band].offset) == (want.bands[band].scale, want.bands[band].offset)
    field = pq.read_schema(_partition_files(Path(built.root))[0]).field("B04").type
    names = [field.field(i).name for i in range(field.num_fields)]
    assert names[:4] == ["href", "error", "scale", "offset"] and "tile_offsets" in names


def test_partitions_are_snappy_compressed(built):
    """Parquet's default codec, read by every GeoParquet reader; a date's ~200 small column
    chunks decode at half zstd's CPU (zstd's per-chunk setup dominates such small chunks)."""
    for path in _partition_files(Path(built.root)):
        meta = pq.ParquetFile(path).metadata
        codecs = {meta.row_group(g).column(c).compression for g in range(meta.num_row_groups)
                  for c in range(meta.num_columns)}
        assert codecs == {"SNAPPY"}


def test_scene_queries_filter_by_date_cloud_bbox_and_bands(built, s2_items):
    assert [s.datetime.day for s in built.scenes(date_range=("2024-01-10", "2024-01-15"))] == [10, 10, 15, 15]
    assert sorted(s.cloud_cover for s in built.scenes(cloud_cover_lt=20)) == [5.0, 9.0, 12.5]
    tile1 = shapely.geometry.shape(next(i for i in s2_items if "43PGQ1" in i["id"])["geometry"])
    near = built.scenes(bbox=tile1.centroid.buffer(0.001).bounds)
    assert {s.id for s in near} == {i["id"] for i in s2_items if "43PGQ1" in i["id"]}
    only = built.scenes(bands=["B04"])
    assert all(set(s.bands) == {"B04"} for s in only)
    with pytest.raises(ValueError, match="'B12'"):
        built.scenes(bands=["B12"])


def test_failed_bands_are_stored_with_their_error_but_not_returned_by_queries(tmp_path, s2_items, source):
    s2_items[0]["assets"]["nir"]["href"] = str(tmp_path / "gone.tif")
    result = harvest(s2_items[:2], source, progress=False)
    coll = Collection.create(tmp_path / "c", name="c", data_source=source, bands=source.bands)
    coll.write_date(dt.date(2024, 1, 5), result.scenes)
    gdf = coll.to_geopandas()
    row = gdf.set_index("id").loc[s2_items[0]["id"]]
    assert row["B08"]["error"].startswith("HttpStatusError") and row["B08"]["width"] is None
    broken = next(s for s in coll.scenes() if s.id == s2_items[0]["id"])
    assert set(broken.bands) == {"B04", "SCL"}
    assert coll.scenes(bands=["B08"])[0].id == s2_items[1]["id"]


def test_write_date_replaces_only_that_date(built):
    root = Path(built.root)
    before = {p.parent.name: p.read_bytes() for p in _partition_files(root)}
    day10 = built.scenes(date_range=("2024-01-10", "2024-01-10"))
    result = built.write_date(dt.date(2024, 1, 10), day10[:1])
    assert result.scenes == 1
    after = {p.parent.name: p.read_bytes() for p in _partition_files(root)}
    assert after["date=2024-01-05"] == before["date=2024-01-05"]
    assert after["date=2024-01-15"] == before["date=2024-01-15"]
    assert len(Collection.open(root)) == 5


def test_empty_write_removes_the_partition(built):
    result = built.write_date(dt.date(2024, 1, 15), [])
    assert result.removed and built.dates() == [dt.date(2024, 1, 5), dt.date(2024, 1, 10)]


def test_scenes_of_another_date_are_refused(built):
    scenes = built.scenes(date_range=("2024-01-05", "2024-01-05"))
    with pytest.raises(ValueError, match="not dated 2024-01-10"):
        built.write_date(dt.date(2024, 1, 10), scenes)


def test_a_failing_write_leaves_the_previous_partition_intact(built):
    path = Path(built.root) / "date=2024-01-05" / "part.parquet"
    before = path.read_bytes()
    good = built.scenes(date_range=("2024-01-05", "2024-01-05"))
    bad = replace(good[1], datetime=good[1].datetime.replace(tzinfo=None))  # naive: rejected mid-build
    with pytest.raises(ValueError):
        built.write_date(dt.date(2024, 1, 5), [good[0], bad])
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["part.parquet"]


def test_a_writer_killed_mid_write_leaves_the_previous_partition_readable(built, tmp_path):
    """A real process dies with SIGKILL after writing its temporary file, before the rename."""
    path = Path(built.root) / "date=2024-01-05" / "part.parquet"
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import datetime as dt, os, signal
        from dataclasses import replace
        from rasteret_core.collection import Collection
        coll = Collection.open({built.root!r})
        scenes = coll.scenes(date_range=("2024-01-05", "2024-01-05"))
        bigger = [replace(s, id=f"{{s.id}}-{{i}}") for s in scenes for i in range(200)]
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die between write and rename
        coll.write_date(dt.date(2024, 1, 5), bigger)
        raise SystemExit("not killed")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in path.parent.iterdir() if p.name != "part.parquet"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".part.parquet.")
    assert leftovers[0].stat().st_size > len(before)  # the new data was on its way
    assert path.read_bytes() == before
    coll = Collection.open(built.root)
    assert len(coll) == 6 and len(coll.scenes(date_range=("2024-01-05", "2024-01-05"))) == 2
    assert len(gpd.read_parquet(built.root)) == 6
    assert pads.dataset(built.root, format="parquet", partitioning="hive").count_rows() == 6


def test_open_of_a_missing_collection_is_a_clear_error(tmp_path):
    from rasteret_core.collection import CollectionError

    with pytest.raises(CollectionError, match="no collection"):
        Collection.open(tmp_path / "nothing")


def test_create_refuses_another_data_source_on_an_existing_collection(built):
    other = DataSource.from_items_file("x.json", S2_BAND_MAP, name="another")
    with pytest.raises(ValueError, match="holds data source 's2-synthetic'"):
        Collection.create(built.root, data_source=other)


def test_one_scan_reads_partitions_written_with_other_band_sets_and_older_fields(built, s2_items, source):
    # a later date stores an extra band the earlier partitions never had
    extra = harvest([i for i in s2_items if i["properties"]["datetime"].startswith("2024-01-15")], source,
                    progress=False).scenes
    renamed = [replace(s, bands={**s.bands, "B8A": replace(s.bands["B08"], band="B8A")}) for s in extra]
    built.write_date(dt.date(2024, 1, 15), renamed)
    # an older writer stored band structs without the "offset" field: rewrite one partition so
    first = _partition_files(Path(built.root))[0]
    table = pq.read_table(first)
    for band in ("B04", "B08", "SCL"):
        col = table.column(band).combine_chunks()
        keep = [i for i in range(col.type.num_fields) if col.type.field(i).name != "offset"]
        older = pa.StructArray.from_arrays([col.field(i) for i in keep], fields=[col.type.field(i) for i in keep],
                                           mask=col.is_null())
        table = table.set_column(table.schema.get_field_index(band), band, older)
    pq.write_table(table, first)

    scenes = built.scenes()
    assert [s.datetime.day for s in scenes] == [5, 5, 10, 10, 15, 15]
    assert [set(s.bands) for s in scenes] == [{"B04", "B08", "SCL"}] * 4 + [{"B04", "B08", "SCL", "B8A"}] * 2
    assert all(s.bands["B04"].offset is None for s in scenes[:2])
    assert all(s.bands["B04"].offset == want.bands["B04"].offset for s, want in zip(scenes[4:], renamed))
    assert [s.id for s in built.scenes(bands=["B8A"])] == [s.id for s in renamed]
    # the streamed form yields the same scenes, in the same order, with the same filters
    assert [s.id for s in built.iter_scenes(cloud_cover_lt=20)] == [s.id for s in built.scenes(cloud_cover_lt=20)]
    with pytest.raises(ValueError, match="'B12'"):
        built.iter_scenes(bands=["B12"])  # refused when called, not when first iterated
