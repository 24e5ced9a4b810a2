"""``rasteret plan`` as a user runs it: the plan it prints equals what ``rasteret read`` then
reports making, and nothing is fetched while planning."""

from __future__ import annotations

import json
import re

from tests.cli.test_cli import FARM, built, demo, rasteret  # noqa: F401  (module fixtures)


def test_plan_prints_the_requests_and_bytes_the_read_then_makes(built, demo, tmp_path):  # noqa: F811
    env = demo[2]
    args = ("--bbox", *FARM.split(), "-b", "B04,B08", "--cloud-cover-lt", "20")
    plan = json.loads(rasteret("plan", built, *args, "--json", env=env).stdout)
    assert plan["read"] == "get_xarray" and plan["requests"] > 0 and plan["header_requests"] == 0
    assert plan["price_usd"] == 0 and plan["prices"]["as_of"]  # a public bucket: the reader pays nothing
    done = rasteret("read", built, *args, "-o", str(tmp_path / "out"), env=env)
    requests, size = map(int, re.search(r"(\d+) requests, (\d+) bytes", done.stderr).groups())
    assert (plan["requests"], plan["bytes"]) == (requests, size)
    text = rasteret("plan", built, *args, env=env).stdout
    assert f"{plan['requests']} requests" in text and "$0" in text


def test_plan_of_points_and_given_prices(built, demo):  # noqa: F811
    env = demo[2]
    lon, lat = FARM.split()[:2]
    plan = json.loads(rasteret("plan", built, "--point", lon, lat, "--point", "77.56", "13.04", "-b", "B04",
                               "--get-price", "0.001", "--json", env=env).stdout)
    assert plan["read"] == "sample_points" and plan["requests"] > 0
    assert plan["prices"]["get_per_1000"] == 0.001 and plan["prices"]["as_of"] == "given"


def test_plan_of_an_area_no_scene_covers_exits_3(built, demo):  # noqa: F811
    done = rasteret("plan", built, "--bbox", "10", "10", "10.1", "10.1", "-b", "B04", env=demo[2], check=3)
    assert "nothing to read" in done.stderr
