"""AOI files: one naming rule with reads (name, else id), names with spaces accepted (paths
are made from them by the one path-safe-name function), unusable names refused with the rule."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from rasteret_core.errors import AoiError
from rasteret_core.names import safe_name
from rasteret_core.products.aois import load_aois

SQUARE = {"type": "Polygon", "coordinates": [[[77.5, 13.0], [77.6, 13.0], [77.6, 13.1], [77.5, 13.1], [77.5, 13.0]]]}


def aoi_file(tmp_path, props):
    path = tmp_path / "aois.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": SQUARE} for p in props]}))
    return path


def test_names_with_spaces_are_partition_keys_and_safe_paths(tmp_path):
    aois = load_aois(aoi_file(tmp_path, [{"name": "north farm"}, {"name": "Ferme du Nord"}]))
    assert list(aois) == ["north farm", "Ferme du Nord"]
    dates = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03")
    parts = dg.MultiPartitionsDefinition({"date": dates, "aoi": dg.StaticPartitionsDefinition(list(aois))})
    assert len(parts.get_partition_keys()) == 4
    assert "/" not in safe_name("north farm") and " " not in safe_name("north farm")


def test_the_id_column_names_aois_when_there_is_no_name(tmp_path):
    assert list(load_aois(aoi_file(tmp_path, [{"id": "field-7"}]))) == ["field-7"]


@pytest.mark.parametrize("name", ["a|b", "a,b", "x[1]", "../up", " padded", "tab\there"])
def test_unusable_names_are_refused_with_the_rule_and_a_suggestion(tmp_path, name):
    with pytest.raises(AoiError, match=r"cannot be used: names become partition keys.*spaces are fine.*for example"):
        load_aois(aoi_file(tmp_path, [{"name": name}]))
