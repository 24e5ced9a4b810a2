"""Which locations may be read and signed: URL schemes, S3 addressing, redirects, redaction.

This is the one module that decides it. Every href (from a STAC API, an items file, a stored
collection) goes through :func:`resolve` (what it points at) and :func:`check_readable` (whether
the caller allows reading it); every request that carries AWS credentials must pass
:func:`may_sign` for the exact URL it is sent to; every redirect must pass
:func:`same_origin`; every URL shown or stored goes through :func:`redact_url`.

Rules, and why:

- An ``s3://`` bucket must be a valid S3 bucket name. The bucket becomes part of a host name
  (``https://{bucket}.s3.{region}.amazonaws.com``), so ``s3://attacker.example#/...`` must
  never turn into a request, signed or not, to ``attacker.example``.
- A request is signed only when its URL's origin is the AWS endpoint derived for that bucket
  and region, or the configured S3 endpoint. A signed request is never redirected.
- Unsigned redirects are followed within the same origin only (scheme, host and port).
- Which schemes and local folders may be read is the caller's choice
  (``ReaderOptions.allowed_schemes`` / ``local_roots``): items from a remote STAC API may
  point at ``http(s)://`` and ``s3://`` only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Union
from urllib.parse import quote

from rasteret_core.errors import LocationError
from rasteret_core.redact import redact_url, split_url

DEFAULT_S3_REGION = "us-west-2"  # home of sentinel-cogs and usgs-landsat
AZURE_BLOB_SUFFIX = ".blob.core.windows.net"
REMOTE_SCHEMES = ("http", "https", "s3")
"""What hrefs of a remote STAC API may point at: never local files."""
ALL_SCHEMES = ("http", "https", "s3", "file")

Signer = Callable[[str], Union[str, Awaitable[str]]]
"""A read-time signing hook (``ReaderOptions.signer``): called before each request with the
asset's ``http(s)://`` URL stripped of any signature, token or expiry parameter
(:func:`strip_secrets`), it returns the URL to fetch, e.g. the same URL with a fresh SAS
token or a presigned query. It may be a coroutine function and should cache its tokens.
The returned URL must have the same origin (scheme, host, port), or the read fails with a
``LocationError``. Example: ``ReaderOptions(signer=lambda url: url + "?" + sas_token)``.
A signer may also have ``invalidate(url, used)``: the reader calls it when a blob store answers
that the signature has expired (Azure 403 ``AuthenticationFailed``), then retries the request
(see :class:`rasteret_core.cog.azure.PlanetaryComputerSigner`)."""


# S3 bucket naming rules (general purpose buckets):
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def valid_bucket_name(name: str) -> bool:
    """Whether ``name`` follows S3's bucket naming rules (3-63 characters of ``a-z0-9.-``,
    starting and ending with a letter or digit, no ``..``, not an IP address, no reserved
    prefix or suffix). Only such names are put into a host name or a path."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name) or ".." in name:
        return False
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        return True


def valid_region(region: str) -> bool:
    """Whether ``region`` looks like an AWS region code (``us-west-2``, ``us-gov-west-1``)."""
    return isinstance(region, str) and bool(_REGION.fullmatch(region))


def aws_endpoint(bucket: str, region: str) -> str:
    """The virtual-hosted AWS origin of ``bucket`` in ``region``; bucket names with dots use
    the path-style origin, since they do not match the ``*.s3...`` TLS certificate."""
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com"
    return f"https://{bucket}.s3.{region}.amazonaws.com"


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower-cased, default ports made explicit; an
    unparseable URL has an empty host, which matches no origin."""
    parts = split_url(url)
    if parts is None:
        return "", "", None
    scheme = parts.scheme.lower()
    port = parts.port
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (a redirect may be followed)."""
    oa = origin(a)
    return bool(oa[1]) and oa == origin(b)


def same_place(url: str, href: str) -> bool:
    """Whether a stored header's ``url`` is on the same place as its item's ``href``: same
    scheme, host and port (for ``s3://``, the same bucket), or both local paths. A stored
    collection whose header points elsewhere than the href users see is refused."""
    def local(text: str) -> bool:
        return "://" not in text or text.lower().startswith("file://")

    if not isinstance(url, str) or not isinstance(href, str) or not url or not href:
        return False
    if local(url) or local(href):
        return local(url) and local(href)
    return same_origin(url, href)


def _check_endpoint(endpoint: str) -> str:
    parts = split_url(endpoint)
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise LocationError(redact_url(endpoint), "the S3 endpoint must be a plain http(s)://host[:port] URL")
    return endpoint.rstrip("/")


@dataclass(frozen=True)
class Location:
    """A resolved place to read bytes from.

    ``kind`` is ``"file"`` (``path`` set) or ``"http"`` (``http_url`` set). ``s3_bucket`` says
    the request follows S3 rules (signing, requester-pays); ``signing_origin`` is then the
    only origin a signed request may go to.
    """

    kind: str
    original: str
    path: Path | None = None
    http_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    signing_origin: str | None = None
    azure_account: str | None = None
    """The storage account of an Azure Blob URL (``https://{account}.blob.core.windows.net``):
    requests follow Blob Storage's rules (service version header, SAS refresh on expiry)."""

    @property
    def scheme(self) -> str:
        return self.original.split("://", 1)[0].lower() if "://" in self.original else "file"

    @property
    def display(self) -> str:
        return redact_url(self.original)


def s3_endpoint_from_env() -> str | None:
    """The custom S3 endpoint from the standard AWS variables, if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_region_from_env() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_S3_REGION


def _quote_key(key: str) -> str:
    # '#' and '?' would end the path; '.'/'..' segments would be collapsed by the HTTP client
    segments = [quote(s, safe="~-._") for s in key.split("/")]
    return "/".join(s.replace(".", "%2E") if s in (".", "..") else s for s in segments)


def resolve(url: str | os.PathLike[str], *, endpoint_url: str | None = None, region: str | None = None,
            azure_endpoint_url: str | None = None) -> Location:
    """Map ``url`` (http(s)://, s3://bucket/key or a local path) to a :class:`Location`.

    ``s3://`` URLs go to ``endpoint_url`` path-style when one is given (or set through
    ``AWS_ENDPOINT_URL``), otherwise to the bucket's AWS address. Azure Blob URLs
    (``https://{account}.blob.core.windows.net/...``) go to ``azure_endpoint_url`` path-style
    (``{endpoint}/{account}/...``, as the Azure emulators serve) when one is given.

    Raises:
        LocationError: unsupported scheme, invalid bucket name or region, malformed URL.
    """
    text = os.fspath(url)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise LocationError(repr(text)[:100], "not a URL or path")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        parts = split_url(text)
        if parts is None or not parts.hostname:
            raise LocationError(text, "the URL has no host")
        host = parts.hostname.lower()
        if host.endswith(AZURE_BLOB_SUFFIX) and len(host) > len(AZURE_BLOB_SUFFIX) and scheme == "https":
            account = host[: -len(AZURE_BLOB_SUFFIX)]
            http_url = text
            if azure_endpoint_url:
                base = _check_endpoint(azure_endpoint_url)
                http_url = f"{base}/{account}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            return Location("http", text, http_url=http_url, azure_account=account)
        return Location("http", text, http_url=text)
    if scheme == "s3":
        rest = text[5:]
        bucket, _, key = rest.partition("/")
        if not valid_bucket_name(bucket):
            raise LocationError(text, f"{bucket[:80]!r} is not a valid S3 bucket name")
        if not key:
            raise LocationError(text, "not an s3://bucket/key URL")
        region = region or s3_region_from_env()
        if not valid_region(region):
            raise LocationError(text, f"{region[:40]!r} is not an AWS region")
        endpoint = endpoint_url or s3_endpoint_from_env()
        if endpoint:
            base = _check_endpoint(endpoint)
            http_url = f"{base}/{bucket}/{_quote_key(key)}"
        else:
            base = aws_endpoint(bucket, region)
            path = f"/{bucket}/{_quote_key(key)}" if "." in bucket else f"/{_quote_key(key)}"
            http_url = base + path
        return Location("http", text, http_url=http_url, s3_bucket=bucket, s3_region=region, signing_origin=base)
    if scheme in ("", "file"):
        path = Path(text[7:] if scheme == "file" else text)
        return Location("file", text, path=path)
    raise LocationError(text, f"unsupported URL scheme {scheme[:20]!r} (use http, https, s3 or a local path)")


def may_sign(loc: Location, url: str) -> bool:
    """Whether AWS credentials may be sent with a request to ``url`` for ``loc``: only to the
    origin derived for ``loc``'s bucket and region, or to the configured S3 endpoint."""
    return loc.s3_bucket is not None and loc.signing_origin is not None and same_origin(url, loc.signing_origin)


def check_readable(loc: Location, *, schemes: Iterable[str] | None = None, local_roots: Iterable[str] | None = None) -> None:
    """Raise :class:`LocationError` unless the caller allows reading ``loc``.

    ``schemes``: allowed schemes among ``http``, ``https``, ``s3`` and ``file`` (``None``:
    all). ``local_roots``: folders local paths must lie in, symlinks resolved (``None``: any
    folder; empty: no local file at all).
    """
    allowed = tuple(schemes) if schemes is not None else ALL_SCHEMES
    if loc.scheme not in allowed:
        what = "local files" if loc.kind == "file" else f"{loc.scheme}:// URLs"
        raise LocationError(loc.original, f"{what} may not be read here (allowed: {', '.join(allowed) or 'none'})")
    if loc.kind != "file" or local_roots is None:
        return
    roots = [os.path.realpath(r) for r in local_roots]
    path = os.path.realpath(loc.path)
    if not any(os.path.commonpath([path, r]) == r for r in roots):
        raise LocationError(loc.original, "local path is outside the allowed folders")


def source_locations(
    items_path: str | os.PathLike[str] | None, *, schemes: Iterable[str] | None = None,
    local_roots: Iterable[str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """``(schemes, local_roots)`` the hrefs of a source may use, for :func:`check_readable`.

    A remote STAC API (``items_path`` is ``None``): ``http``, ``https`` and ``s3`` only,
    unless the caller lists ``file`` in ``schemes`` and gives ``local_roots``. A local items
    file: any scheme, local paths only inside the file's own folder or the caller's
    ``local_roots``.
    """
    roots = tuple(os.fspath(r) for r in local_roots) if local_roots is not None else None
    if items_path is None:
        allowed = tuple(schemes) if schemes is not None else REMOTE_SCHEMES
        if "file" in allowed and not roots:
            allowed = tuple(s for s in allowed if s != "file")  # a remote API never names local files alone
        return allowed, roots if "file" in allowed else ()
    folder = os.path.dirname(os.path.realpath(os.fspath(items_path)))
    return (tuple(schemes) if schemes is not None else ALL_SCHEMES), (folder, *(roots or ()))
