"""Names that would overwrite each other's files on a case-insensitive filesystem are refused,
naming both; a server's own HTTP reason phrase never reaches an error text."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from aiohttp import web

from rasteret_core.cog import HttpStatusError, read_header
from rasteret_core.errors import AoiError, UnsafePathError
from rasteret_core.names import check_distinct, safe_name
from rasteret_core.products.aois import load_aois


def square(x: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x, 0], [x + 0.01, 0], [x + 0.01, 0.01], [x, 0.01], [x, 0]]]}


def test_aoi_names_differing_only_in_case_are_refused_naming_both(tmp_path):
    path = tmp_path / "aois.geojson"
    features = [{"type": "Feature", "properties": {"name": n}, "geometry": square(i)}
                for i, n in enumerate(["FIELD", "north", "Field"])]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(AoiError, match="'FIELD' and 'Field' differ only in letter case"):
        load_aois(path)


def test_names_that_stay_distinct_whatever_the_case_pass():
    check_distinct(["north", "south", "North~field", "a.b"])
    assert safe_name("FIELD") != safe_name("field")  # the mapping itself keeps case; the set check refuses


def test_save_per_geometry_refuses_case_colliding_ids(tmp_path):
    import numpy as np
    import xarray as xr

    from rasteret_core.products.outputs import save_per_geometry

    ds = xr.Dataset({"B04": (("time", "y", "x"), np.zeros((1, 2, 2), "uint16"))})
    with pytest.raises(UnsafePathError, match="'field' and 'FIELD'"):
        save_per_geometry({"field": ds, "FIELD": ds}, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def lying_server():
    """Answers every request 403 with a reason phrase carrying markup and a 'secret'."""
    async def handler(request):
        return web.Response(status=403, reason="OK <script>secret-token-123</script>", text="denied")

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def test_a_servers_reason_phrase_never_reaches_the_error_text(lying_server):
    with pytest.raises(HttpStatusError) as caught:
        read_header(f"{lying_server}/a.tif", retries=0)
    text = str(caught.value)
    assert "HTTP 403 Forbidden" in text and caught.value.status == 403
    assert "secret-token-123" not in text and "<script>" not in text
