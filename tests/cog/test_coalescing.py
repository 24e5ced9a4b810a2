"""Range coalescing: every wanted range is served by exactly one request, within the rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rasteret_core.cog import ReadStats
from rasteret_core.cog.fetch import coalesce, split_merged

ranges = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(1, 500)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=0,
    max_size=60,
)


@given(ranges, st.integers(0, 2_000), st.integers(1, 5_000))
def test_every_range_is_covered_once_and_requests_are_disjoint(wanted, gap, max_bytes):
    merged = coalesce(wanted, gap, max_bytes)
    owners = {r: [m for m in merged if r in m.parts] for r in set(wanted)}
    assert all(len(found) == 1 for found in owners.values())
    for m in merged:
        assert all(m.start <= s and e <= m.end for s, e in m.parts)
        assert m.start == min(s for s, _ in m.parts) and m.end == max(e for _, e in m.parts)
    for a, b in zip(merged, merged[1:]):
        assert a.end < b.start or a.end - a.start + (b.end - b.start) > max_bytes or b.start - a.end > gap


@given(ranges, st.integers(0, 2_000))
def test_merged_requests_respect_the_size_cap_unless_one_range_is_larger(wanted, gap):
    cap = 1_000
    for m in coalesce(wanted, gap, cap):
        assert m.end - m.start <= cap or len(m.parts) == 1 or max(e - s for s, e in m.parts) > cap


def test_adjacent_ranges_merge_into_one_request():
    merged = coalesce([(0, 10), (10, 20), (20, 35)], gap=0, max_bytes=1 << 20)
    assert [(m.start, m.end) for m in merged] == [(0, 35)]


def test_split_counts_bridged_gap_as_waste():
    (m,) = coalesce([(0, 10), (15, 20)], gap=8, max_bytes=1 << 20)
    stats = ReadStats()
    parts = split_merged(m, bytes(range(20)), stats)
    assert parts[(15, 20)] == bytes(range(15, 20))
    assert stats.bytes_wasted == 5
