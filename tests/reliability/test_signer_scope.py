"""Signers are scoped and isolated: a SAS token goes only to the Azure accounts the signer
declares, never to S3, plain-http or foreign hosts; clients are not shared between signers;
no secret travels in a pickle; token fetches are bounded and their failures remembered."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
import threading
import time
from dataclasses import replace

import pytest
from aiohttp import web

from rasteret_core.cog import read_header, ReaderOptions
from rasteret_core.cog.azure import PlanetaryComputerSigner
from rasteret_core.cog.fetch import signs
from rasteret_core.cog.reader import run_sync
from rasteret_core.cog.urls import resolve
from rasteret_core.errors import SigningError
from rasteret_core.load.runtime import runtime
from rasteret_core.testing.azure_blob import AzureBlobServer
from tests.reliability.test_stale_headers import one_cog

PC_BLOB = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x.tif"


class TokenEndpoint:
    """A token endpoint on 127.0.0.1 that stalls, or hands out tokens with a chosen expiry."""

    def __init__(self, *, stall: float = 0.0, expiry: dt.datetime | None = None) -> None:
        self.stall, self.expiry, self.requests = stall, expiry, 0

    async def _token(self, request):
        self.requests += 1
        if self.stall:
            await asyncio.sleep(self.stall)  # the endpoint's bad minute, not a test timing
        expiry = self.expiry or dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        return web.json_response({"token": "sv=2021&sig=abc", "msft:expiry": expiry.isoformat()})

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/token/{account}/{container}", self._token)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/token"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# --- scope -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "s3://sentinel-cogs/tiles/x.tif",                                   # an S3 item host
    "http://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x.tif",   # plain http
    "https://evilaccount.blob.core.windows.net/sentinel2-l2/x.tif",     # an account the item chose
    "https://example.com/sentinel2l2a01/sentinel2-l2/x.tif",            # path-style on another host
])
def test_the_pc_signer_signs_none_but_its_accounts(url):
    signer = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/token")
    assert not signs(signer, resolve(url))
    assert signs(signer, resolve(PC_BLOB))


def test_a_plain_callable_signer_never_signs_s3_locations_or_local_files(tmp_path):
    def sas(url: str) -> str:
        return url + "?sig=appended"

    assert not signs(sas, resolve("s3://sentinel-cogs/tiles/x.tif"))
    assert not signs(sas, resolve(str(tmp_path / "x.tif")))
    assert signs(sas, resolve(PC_BLOB)) and signs(sas, resolve("https://example.com/presigned.tif"))


def test_a_foreign_account_blob_is_requested_unsigned_and_no_token_is_fetched(tmp_path):
    one_cog(tmp_path / "blobs" / "B04.tif")
    with AzureBlobServer({("evilaccount", "cont"): tmp_path / "blobs"}) as blobs:
        options = ReaderOptions(signer=PlanetaryComputerSigner(token_url=blobs.token_url),
                                azure_endpoint_url=blobs.endpoint_url, retries=0)
        with pytest.raises(Exception):  # the stand-in refuses a request without a SAS
            read_header("https://evilaccount.blob.core.windows.net/cont/B04.tif", options=options)
        assert blobs.stats.token_requests == 0


# --- isolation -----------------------------------------------------------------------------------
def test_two_signers_never_share_a_client():
    a = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/a")
    b = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/b")
    base = ReaderOptions()
    ra, rb = runtime(replace(base, signer=a)), runtime(replace(base, signer=b))
    assert ra is not rb and ra.client.options.signer is a and rb.client.options.signer is b
    assert runtime(replace(base, signer=a)) is ra  # the same signer reuses its client
    keyed = [PlanetaryComputerSigner(token_url="http://127.0.0.1:9/a", subscription_key=k) for k in ("k1", "k2")]
    assert runtime(replace(base, signer=keyed[0])) is not runtime(replace(base, signer=keyed[1]))  # other keys


def test_no_secret_travels_in_a_pickle(monkeypatch):
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "subscription-key-from-env-0042")
    from_env = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/token")
    given = PlanetaryComputerSigner(token_url="http://127.0.0.1:9/token", subscription_key="given-key-0099")
    blob = pickle.dumps(ReaderOptions(signer=from_env)) + pickle.dumps(given)
    assert b"subscription-key-from-env-0042" not in blob and b"given-key-0099" not in blob
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "the-workers-own-key")
    worker_copy = pickle.loads(pickle.dumps(from_env))
    assert worker_copy._key == "the-workers-own-key"  # read from the worker's environment


# --- bounded token fetches ------------------------------------------------------------------------
def test_a_stalled_token_endpoint_costs_one_deadline_then_signings_fail_fast(record_property):
    with TokenEndpoint(stall=60) as endpoint:
        signer = PlanetaryComputerSigner(token_url=endpoint.url, deadline=1.0, failure_backoff=30)
        started = time.monotonic()
        with pytest.raises(SigningError, match="deadline"):
            run_sync(lambda: signer(PC_BLOB))
        first = time.monotonic() - started
        for _ in range(20):
            with pytest.raises(SigningError, match="remembered"):
                run_sync(lambda: signer(PC_BLOB))
        record_property("reliability.stalled_token_first_signing_s", round(first, 2))
        record_property("reliability.stalled_token_21_signings_s", round(time.monotonic() - started, 2))
        assert endpoint.requests == 1


def test_a_token_already_expired_is_refused_once_not_fetched_per_signing():
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    with TokenEndpoint(expiry=past) as endpoint:
        signer = PlanetaryComputerSigner(token_url=endpoint.url)
        for _ in range(20):
            with pytest.raises(SigningError, match="already past|remembered"):
                run_sync(lambda: signer(PC_BLOB))
        assert endpoint.requests == 1
