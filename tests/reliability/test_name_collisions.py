"""Names that a case-insensitive filesystem (macOS, Windows) would map to one file are refused
wherever a set of names becomes file names, naming both: ``FIELD``/``Field``/``field``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasteret_core.errors import AoiError, UnsafePathError
from rasteret_core.names import check_distinct, safe_name
from rasteret_core.products.aois import load_aois

# short enough never to be cut and hashed (12 characters of at most 12 escaped bytes each): a
# hashed name carries a digest of the whole name, so case differences past the cut make two files
NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def aoi_file(path, names):
    features = [{"type": "Feature", "properties": {"name": n},
                 "geometry": {"type": "Polygon", "coordinates": [[[i, 0], [i + .01, 0], [i + .01, .01], [i, 0]]]}}
                for i, n in enumerate(names)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_three_spellings_of_one_field_are_refused_naming_the_first_two(tmp_path):
    with pytest.raises(AoiError, match="'FIELD' and 'Field' differ only in letter case"):
        load_aois(aoi_file(tmp_path / "aois.geojson", ["FIELD", "Field", "field"]))


def test_accented_names_in_two_cases_pass_as_their_files_differ(tmp_path):
    # only ASCII letters reach a file name as themselves; others are escaped by their UTF-8
    # bytes, so "À" and "à" make two different (ASCII) file names on any filesystem
    aois = load_aois(aoi_file(tmp_path / "aois.geojson", ["\u00c0", "\u00e0"]))
    assert sorted(aois) == ["\u00c0", "\u00e0"]
    assert len({safe_name(n).casefold() for n in aois}) == 2


@settings(max_examples=200, deadline=None)
@given(NAMES, st.data())
def test_two_names_differing_in_the_case_of_an_ascii_letter_are_refused_naming_both(name, data):
    letters = [i for i, ch in enumerate(name) if ch.isascii() and ch.isalpha()]
    if not letters:
        name, letters = name + "x", [len(name)]
    flip = data.draw(st.sets(st.sampled_from(letters), min_size=1))
    other = "".join(ch.swapcase() if i in flip else ch for i, ch in enumerate(name))
    with pytest.raises(UnsafePathError) as caught:
        check_distinct([name, "unrelated", other])
    assert repr(name) in str(caught.value) and repr(other) in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.lists(NAMES, max_size=8, unique_by=lambda n: "".join(c.lower() if c.isascii() else c for c in n)))
def test_names_that_differ_beyond_ascii_letter_case_pass(names):
    check_distinct(names)
