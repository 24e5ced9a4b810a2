"""A stored collection is third-party input (a teammate's, or one on a shared bucket).

Each test builds an honest collection from items served over HTTP by the object store
stand-in, then edits its Parquet partition the way someone with write access to the shared
storage could: the stored header ``url`` pointed at a local secret or an internal host, or a
band struct made inconsistent. Reads must refuse the bad row by name before any request to
where it points, and read every other scene.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings, strategies as st

from rasteret_core.api import Rasteret
from rasteret_core.cog import StoredHeaderError
from rasteret_core.cog.header_check import stored_header
from rasteret_core.collection import Collection
from rasteret_core.errors import PartialReadWarning, RasteretError
from rasteret_core.stac.sources import DataSource
from rasteret_core.testing.object_store import ObjectStoreServer
from tests.collection.conftest import make_s2_scenes, S2_BAND_MAP
from tests.helpers.attacker import RecordingServer

JANUARY = ("2024-01-01", "2024-01-31")
SECRET = 4242  # the secret file's every pixel: must never show up in a read


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Synthetic scenes in a bucket of the object store, and their items (hrefs over HTTP)."""
    buckets = tmp_path_factory.mktemp("buckets")
    with ObjectStoreServer(buckets={"cogs": buckets}) as store:
        items = make_s2_scenes(buckets, href_prefix=f"{store.endpoint_url}/cogs")
        yield store, items


def build(tmp_path: Path, items: list[dict]) -> Rasteret:
    items_file = tmp_path / "items" / "items.json"
    items_file.parent.mkdir()
    items_file.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    source = DataSource.from_items_file(items_file, S2_BAND_MAP, name="s2-shared", collection="sentinel-2-l2a")
    r = Rasteret("shared", source, JANUARY, workspace_dir=tmp_path / "workspace", progress=False)
    r.create_collection(bands=["B04", "B08"])
    return Rasteret.load_collection(r.name, tmp_path / "workspace")


def secret_cog(folder: Path) -> Path:
    """A valid COG a reader could decode, holding the 'secret' value in every pixel."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret.tif"
    profile = dict(driver="COG", width=512, height=512, count=1, dtype="uint16", crs="EPSG:32643",
                   transform=rasterio.transform.from_origin(770000, 1440000, 10, 10), compress="DEFLATE",
                   blocksize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((512, 512), SECRET, "uint16"), 1)
    return path


def tamper(r: Rasteret, scene_id: str, band: str, **changes) -> None:
    """Rewrite one band struct of one stored row, as a writer with access to the storage could."""
    for part in Path(r.root).glob("date=*/part.parquet"):
        table = pq.read_table(part)
        rows = table.to_pylist()
        if not any(row["id"] == scene_id for row in rows):
            continue
        for row in rows:
            if row["id"] == scene_id:
                row[band].update(changes)
        pq.write_table(table.from_pylist(rows, schema=table.schema), part)
        return
    raise AssertionError(f"{scene_id} not stored")


def target(r: Rasteret) -> tuple[str, object]:
    """The first scene's id and a box inside its footprint."""
    import shapely

    scene = r.collection.scenes()[0]
    x0, y0, x1, y1 = scene.geometry.bounds
    dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
    return scene.id, shapely.box(x0 + dx, y0 + dy, x1 - dx, y1 - dy)


def read(r: Rasteret, aoi) -> tuple[dict, list]:
    """A read of one field in which the refused row makes one read fail (and warn) by name."""
    with pytest.warns(PartialReadWarning, match="1 of 3 read"):
        datasets = r.get_xarray({"field": aoi}, ["B04"], per_geometry=True)
    return datasets, list(datasets.diagnosis.failures)


def values(datasets) -> np.ndarray:
    return np.concatenate([ds.B04.values.ravel() for ds in datasets.values()]) if datasets else np.array([])


# --- the stored url -----------------------------------------------------------------------------
def test_a_stored_url_pointing_at_a_local_secret_is_refused_and_the_other_scenes_read(served, tmp_path):
    store, items = served
    r = build(tmp_path, items)
    scene_id, aoi = target(r)
    secret = secret_cog(tmp_path / "elsewhere")
    tamper(r, scene_id, "B04", url=str(secret))
    datasets, failures = read(r, aoi)
    refused = [f for f in failures if f.scene_id == scene_id and f.band == "B04"]
    assert refused and "not the location of the item's href" in refused[0].error
    assert SECRET not in values(datasets)
    assert datasets["field"].sizes["time"] >= 1  # the other scenes over the field were read


def test_a_stored_href_and_url_outside_the_items_folder_are_never_opened(served, tmp_path):
    store, items = served
    r = build(tmp_path, items)
    scene_id, aoi = target(r)
    secret = secret_cog(tmp_path / "elsewhere")
    tamper(r, scene_id, "B04", url=str(secret), href=str(secret))
    datasets, failures = read(r, aoi)
    refused = [f for f in failures if f.scene_id == scene_id and f.band == "B04"]
    assert refused and "outside the allowed folders" in refused[0].error
    assert SECRET not in values(datasets)


def test_a_stored_url_pointing_at_an_internal_host_gets_no_request(served, tmp_path):
    store, items = served
    r = build(tmp_path, items)
    scene_id, aoi = target(r)
    internal = RecordingServer(body=secret_cog(tmp_path / "internal").read_bytes())
    with internal:
        tamper(r, scene_id, "B04", url=f"{internal.origin}/latest/meta-data/B04.tif")
        datasets, failures = read(r, aoi)
    assert internal.received == []
    assert any(f.scene_id == scene_id and "StoredHeaderError" in f.error for f in failures)
    assert SECRET not in values(datasets)


# --- hostile band structs --------------------------------------------------------------------
HOSTILE = {
    "short offset list": lambda s: {"tile_offsets": s["tile_offsets"][:-1]},
    "width 2^31": lambda s: {"width": 2**31},
    "negative offsets": lambda s: {"tile_offsets": [-1] * len(s["tile_offsets"])},
    "dtype bogus": lambda s: {"dtype": "bogus"},
    "tile width 0": lambda s: {"tile_width": 0},
    "NaN transform": lambda s: {"transform": [math.nan] * 6},
    "zero transform": lambda s: {"transform": [0.0] * 6},
    "unknown compression": lambda s: {"compression": 99999},
    "offsets past the file": lambda s: {"tile_offsets": [2**60] * len(s["tile_offsets"])},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_band_struct_fails_that_scene_by_name_and_the_others_read(served, tmp_path, case):
    store, items = served
    r = build(tmp_path, items)
    scene_id, aoi = target(r)
    stored = next(row for row in pq.read_table(next(Path(r.root).glob("date=*/part.parquet"))).to_pylist())
    tamper(r, scene_id, "B04", **HOSTILE[case](stored["B04"]))
    scene = next(s for s in r.collection.scenes() if s.id == scene_id)
    assert scene.bands["B04"].header is None
    assert scene_id in scene.bands["B04"].error and "StoredHeaderError" in scene.bands["B04"].error
    datasets, failures = read(r, aoi)
    assert any(f.scene_id == scene_id and f.band == "B04" and scene_id in f.error for f in failures)
    others = {f.scene_id for f in failures} - {scene_id}
    assert not others


def test_rasteret_read_reports_a_refused_row_in_one_line_and_writes_the_rest(served, tmp_path):
    from click.testing import CliRunner

    from rasteret_core.cli import main

    store, items = served
    r = build(tmp_path, items)
    scene_id, aoi = target(r)
    tamper(r, scene_id, "B04", width=2**31)
    aoi_file = tmp_path / "aoi.geojson"
    import geopandas as gpd

    gpd.GeoDataFrame({"name": ["field"]}, geometry=[aoi], crs=4326).to_file(aoi_file)
    result = CliRunner().invoke(main, ["read", r.name, "--workspace", str(tmp_path / "workspace"), "--aois",
                                       str(aoi_file), "--bands", "B04", "--output", str(tmp_path / "out")])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert scene_id in result.output
    assert list((tmp_path / "out").rglob("*.tif"))


# --- property: any mutation of a stored struct is a project error or a valid header ------------
@pytest.fixture(scope="module")
def valid_struct(served, tmp_path_factory):
    store, items = served
    r = build(tmp_path_factory.mktemp("valid"), items)
    return next(row for row in pq.read_table(next(Path(r.root).glob("date=*/part.parquet"))).to_pylist())["B04"]


_INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 2**31, 2**32, 65536]))
_VALUES = {
    "width": _INTS, "height": _INTS, "tile_width": _INTS, "tile_height": _INTS,
    "samples_per_pixel": st.integers(-(2**31), 2**31 - 1), "planar_configuration": st.integers(-3, 5),
    "dtype": st.sampled_from(["bogus", "uint16", "float64", "complex128", "object", "", "V8"]),
    "bits_per_sample": st.integers(-5, 200), "compression": st.integers(-5, 70000), "predictor": st.integers(-3, 9),
    "tile_offsets": st.lists(_INTS, max_size=6), "tile_byte_counts": st.lists(_INTS, max_size=6),
    "transform": st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=6, max_size=6),
    "file_size": st.one_of(st.none(), _INTS), "byte_order": st.sampled_from(["<", ">", "x", ""]),
    "url": st.sampled_from(["", "http://127.0.0.1:1/x.tif", "/etc/passwd"]),
    "overviews": st.just([{}]),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(_VALUES)), st.none(), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: _VALUES[k] for k in keys})))
def test_any_mutation_of_a_stored_struct_is_a_project_error_or_a_consistent_header(valid_struct, changes):
    row = {**valid_struct, **changes}
    try:
        header = stored_header(row, scene_id="S", band="B04")
    except StoredHeaderError as exc:
        assert "scene 'S' band 'B04'" in str(exc)
        return
    except RasteretError as exc:  # pragma: no cover - any other project error would still be named
        pytest.fail(f"not a StoredHeaderError: {exc!r}")
    assert header.tile_offsets.size == header.tiles_across * header.tiles_down * header.planes
