"""Azure Blob Storage: blob addresses, request headers, and the Planetary Computer SAS signer.

Planetary Computer serves its COGs from ``https://{account}.blob.core.windows.net/{container}/...``
and hands out short-lived SAS tokens per container. A collection stores the unsigned href;
:class:`PlanetaryComputerSigner`, given as ``ReaderOptions(signer=...)``, appends a token at
read time. Tokens are cached in memory until shortly before their ``msft:expiry``, refreshed
when that comes near during a long read, and refreshed at once when the blob service answers
403 saying the signature is no longer valid; the request is then retried. No token is ever
written anywhere: stored and shown URLs go through ``rasteret_core.redact.redact_url``.

Range semantics: Blob Storage honours ``Range: bytes=a-b`` with 206 and ``Content-Range``
when the request names a service version (``x-ms-version``) of 2011-08-18 or later; every blob
request here sends :data:`BLOB_API_VERSION`. Multi-range requests are not supported by Azure
(the reader never sends them); a range past the end is 416 ``InvalidRange``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from rasteret_core.cog.urls import AZURE_BLOB_SUFFIX
from rasteret_core.errors import ArgumentError, SigningError

BLOB_API_VERSION = "2021-08-06"
"""The Blob service version sent with every blob request (range answers follow it)."""
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
"""Planetary Computer's token endpoint: ``{PC_TOKEN_URL}/{account}/{container}``."""
PC_SUBSCRIPTION_KEY_ENV = "PC_SDK_SUBSCRIPTION_KEY"
"""Environment variable of an optional Planetary Computer subscription key (higher rate limits)."""
PC_ACCOUNTS = frozenset({
    "sentinel2l2a01", "landsateuwest", "naipeuwest", "modiseuwest", "goeseuwest", "nasademeuwest",
    "sentinel1euwest", "sentinel1euwestrtc", "sentinel3euwest", "cpdataeuwest", "ai4edataeuwest",
})
"""Storage accounts of the Planetary Computer collections the signer signs for by default (the
Sentinel and Landsat accounts among them); extend with ``PlanetaryComputerSigner(accounts=...)``.
A token is never asked for, nor sent to, an account an item names outside this list."""

# What Azure says when a SAS token has expired (or is not yet valid): 403 AuthenticationFailed
# with "Signature not valid in the specified time frame" / "...expired" in the detail.
_EXPIRED_MARKERS = ("not valid in the specified time frame", "expired")


def is_blob_host(host: str | None) -> bool:
    """Whether ``host`` is an Azure Blob Storage account host (``*.blob.core.windows.net``)."""
    return bool(host) and host.lower().endswith(AZURE_BLOB_SUFFIX) and len(host) > len(AZURE_BLOB_SUFFIX)


def blob_container(url: str) -> tuple[str, str]:
    """``(account, container)`` of an Azure blob URL
    ``https://{account}.blob.core.windows.net/{container}/{blob}``.

    Only that form: a path-style URL on another host (an emulator's) is never taken to name an
    account, so an item cannot choose which account a token is fetched for by naming a host.

    Raises:
        ValueError: the URL is not an https Azure blob URL with an account and a container.
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme.lower() != "https" or not is_blob_host(parts.hostname):
        raise ArgumentError(f"not an https Azure blob URL: {parts.scheme}://{parts.netloc}{parts.path}")
    account, rest = parts.hostname.split(".", 1)[0], segments
    if not account or len(rest) < 2:
        raise ArgumentError(f"not a blob URL with an account, a container and a blob: {parts.scheme}://{parts.netloc}{parts.path}")
    return account.lower(), rest[0]


def token_expired(status: int, body: str) -> bool:
    """Whether an error answer says the request's SAS token has expired (so a fresh one helps)."""
    text = body.lower()
    return status == 403 and "authenticationfailed" in text and any(m in text for m in _EXPIRED_MARKERS)


@dataclass(frozen=True)
class SasToken:
    """A SAS token (the query string to append) and when it stops being valid (UTC epoch s)."""

    token: str
    expires_at: float

    def __repr__(self) -> str:  # never show the token itself
        return f"SasToken(expires_at={self.expires_at!r})"


class PlanetaryComputerSigner:
    """The read-time signer for Planetary Computer blobs (``ReaderOptions(signer=...)``).

    Calling it with a blob URL returns the URL with a SAS token for its container. Tokens come
    from ``token_url`` (``{token_url}/{account}/{container}``), one request per container,
    and are reused until ``refresh_margin`` seconds before their ``msft:expiry``.
    Concurrent requests for a missing token share one token request.

    It signs only what it declares (:meth:`signs`): https blob URLs of the storage ``accounts``
    it serves; any other location is requested unsigned. Token fetches are bounded by
    ``deadline`` (all attempts together, ``connect_timeout`` per connection); a failure is
    remembered for ``failure_backoff`` seconds, during which signings for that container fail
    at once with the remembered reason; a token already expired (or within
    ``refresh_margin`` of it) when it arrives is refused.

    Args:
        token_url: the token endpoint (default: Planetary Computer's).
        subscription_key: sent as ``Ocp-Apim-Subscription-Key``; default from
            ``PC_SDK_SUBSCRIPTION_KEY`` when set. Never pickled: a copy in another process
            (a dask worker) reads that variable from its own environment.
        accounts: storage accounts to sign for (default :data:`PC_ACCOUNTS`).
        refresh_margin: seconds before expiry at which a token counts as expired.
        timeout: seconds allowed for one token request.
        attempts: token requests tried on 429/5xx/connection errors before giving up.
        deadline: seconds allowed for one token fetch, all attempts included.
        connect_timeout: seconds allowed to connect to the token endpoint.
        failure_backoff: seconds a failed fetch is remembered before the next try.
        clock: the time source (seconds since the epoch).
    """

    def __init__(
        self,
        token_url: str = PC_TOKEN_URL,
        *,
        subscription_key: str | None = None,
        accounts: Iterable[str] | None = None,
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
        attempts: int = 3,
        deadline: float = 20.0,
        connect_timeout: float = 5.0,
        failure_backoff: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url.rstrip("/")
        self._key = subscription_key if subscription_key is not None else os.environ.get(PC_SUBSCRIPTION_KEY_ENV)
        self.accounts = frozenset(a.lower() for a in (accounts if accounts is not None else PC_ACCOUNTS))
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.failure_backoff = failure_backoff
        self.clock = clock
        self.token_requests = 0
        self._lock = threading.Lock()  # the cache is shared by every event loop that reads
        self._tokens: dict[tuple[str, str], SasToken] = {}
        self._failures: dict[tuple[str, str], tuple[float, SigningError]] = {}
        self._pending: dict[tuple[int, str, str], asyncio.Future] = {}

    def __repr__(self) -> str:
        return f"PlanetaryComputerSigner({self.token_url!r})"

    @property
    def identity(self) -> tuple:
        """What makes two signers interchangeable (caches of clients key on it): the endpoint,
        the accounts and a digest of the key (signers with other keys never share a client);
        never the key itself."""
        digest = hashlib.sha256(self._key.encode()).hexdigest()[:16] if self._key else None
        return ("planetary-computer", self.token_url, self.accounts, digest)

    def signs(self, url: str) -> bool:
        """Whether this signer signs ``url``: an https blob URL of one of its accounts."""
        try:
            account, _ = blob_container(url)
        except ValueError:
            return False
        return account in self.accounts

    def __getstate__(self) -> dict:
        # a copy sent to another process (a dask worker) starts with no token of its own and
        # carries no secret: the subscription key is read again from the worker's environment
        state = dict(self.__dict__)
        state.update(_lock=None, _tokens={}, _pending={}, _failures={}, _key=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._key = os.environ.get(PC_SUBSCRIPTION_KEY_ENV)

    async def __call__(self, url: str) -> str:
        """``url`` with a valid SAS token for its container (any query it had is kept).

        Raises:
            SigningError: ``url`` is not a blob URL, or no token could be had.
        """
        try:
            account, container = blob_container(url)
        except ValueError as exc:
            raise SigningError(url, str(exc)) from None
        if account not in self.accounts:
            raise SigningError(url, f"account {account!r} is not one this signer serves ({', '.join(sorted(self.accounts))})")
        token = await self.token(account, container)
        return f"{url}{'&' if urlsplit(url).query else '?'}{token.token}"

    async def token(self, account: str, container: str) -> SasToken:
        """A token for ``account/container`` valid for at least ``refresh_margin`` more seconds."""
        key = (account, container)
        with self._lock:
            cached = self._tokens.get(key)
            failed = self._failures.get(key)
        if cached is not None and cached.expires_at - self.refresh_margin > self.clock():
            return cached
        if failed is not None and failed[0] > self.clock():
            raise SigningError(failed[1].url, f"{failed[1].reason} (remembered; next try in"
                                              f" {failed[0] - self.clock():.0f} s)")
        loop = asyncio.get_running_loop()
        pending_key = (id(loop), account, container)
        pending = self._pending.get(pending_key)
        if pending is None:
            pending = loop.create_task(self._fetch(account, container))
            self._pending[pending_key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(pending_key, None))
        return await asyncio.shield(pending)

    def invalidate(self, url: str, used: str | None = None) -> None:
        """Forget the cached token of ``url``'s container (the service said it has expired).

        ``used`` is the signed URL that failed: a token already replaced since is kept, so
        many failed requests of one read cause one refresh.
        """
        try:
            key = blob_container(url)
        except ValueError:
            return  # not a blob URL this signer could have signed
        used_sig = parse_qs(urlsplit(used).query).get("sig") if used is not None else None
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and (used_sig is None or parse_qs(cached.token).get("sig") == used_sig):
                del self._tokens[key]

    async def _fetch(self, account: str, container: str) -> SasToken:
        try:
            return await asyncio.wait_for(self._fetch_now(account, container), self.deadline)
        except asyncio.TimeoutError:
            error = SigningError(f"{self.token_url}/{account}/{container}",
                                 f"no token within the {self.deadline:g} s deadline")
        except SigningError as exc:
            error = exc
        with self._lock:  # later signings fail fast until the back-off has passed
            self._failures[(account, container)] = (self.clock() + self.failure_backoff, error)
        raise error

    async def _fetch_now(self, account: str, container: str) -> SasToken:
        import aiohttp

        url = f"{self.token_url}/{account}/{container}"
        headers = {"User-Agent": "rasteret"}
        if self._key:
            headers["Ocp-Apim-Subscription-Key"] = self._key
        body = b""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            self.token_requests += 1
            try:
                limits = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout)
                async with aiohttp.ClientSession(timeout=limits) as session:
                    async with session.get(url, headers=headers, allow_redirects=False) as resp:
                        body = await resp.content.read(64 * 1024)
                        status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = f"token request failed ({type(exc).__name__})"
                continue
            if status == 200:
                break
            problem = f"token endpoint answered HTTP {status}"
            if status not in (429, 500, 502, 503, 504):
                raise SigningError(url, problem)
        else:
            raise SigningError(url, f"{problem} ({self.attempts} attempts)")
        try:
            data = json.loads(body)
            token, expiry = str(data["token"]).lstrip("?"), _parse_expiry(data["msft:expiry"])
        except (ValueError, KeyError, TypeError):
            raise SigningError(url, "the answer has no token and msft:expiry") from None
        if not token:
            raise SigningError(url, "the answer holds an empty token")
        if expiry - self.refresh_margin <= self.clock():
            raise SigningError(url, f"the token endpoint returned a token expiring at {_iso(expiry)}, already past"
                                    f" (or within {self.refresh_margin:g} s); is this machine's clock right?")
        sas = SasToken(token, expiry)
        with self._lock:
            self._tokens[(account, container)] = sas
            self._failures.pop((account, container), None)
        return sas


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="seconds")


def _parse_expiry(value: str) -> float:
    text = str(value).strip().replace("Z", "+00:00")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


_DEFAULT: PlanetaryComputerSigner | None = None
_DEFAULT_LOCK = threading.Lock()


def planetary_computer_signer() -> PlanetaryComputerSigner:
    """The process-wide signer for Planetary Computer sources (one token cache for every read)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = PlanetaryComputerSigner()
        return _DEFAULT
