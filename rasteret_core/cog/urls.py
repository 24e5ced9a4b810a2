"""Where bytes come from: URL schemes, S3 addressing and credential-free display."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit, parse_qsl, urlencode

# Query parameters of presigned URLs that must never be shown.
_SECRET_QUERY_KEYS = {
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "awsaccesskeyid",
    "sig",
    "token",
    "se",
    "sp",
    "sv",
    "skoid",
    "sktid",
    "skt",
    "ske",
    "sks",
    "skv",
}

DEFAULT_S3_REGION = "us-west-2"  # home of sentinel-cogs and usgs-landsat


def redact_url(url: str) -> str:
    """Return ``url`` without user info and without signature/token query parameters."""
    if not isinstance(url, str) or "://" not in url:
        return str(url)
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        kept = [
            (k, v if k.lower() not in _SECRET_QUERY_KEYS else "REDACTED")
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(kept, safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Location:
    """A resolved place to read bytes from.

    ``kind`` is ``"file"`` (``path`` set) or ``"http"`` (``http_url`` set). ``s3`` says whether
    the request must follow S3 rules (signing, requester-pays) and carries bucket and region.
    """

    kind: str
    original: str
    path: Path | None = None
    http_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None

    @property
    def display(self) -> str:
        return redact_url(self.original)


def s3_endpoint_from_env() -> str | None:
    """The custom S3 endpoint from the standard AWS variables, if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_region_from_env() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_S3_REGION


def resolve(url: str | os.PathLike[str], *, endpoint_url: str | None = None, region: str | None = None) -> Location:
    """Map ``url`` (http(s)://, s3://bucket/key or a local path) to a :class:`Location`.

    ``s3://`` URLs go to ``endpoint_url`` path-style when one is given (or set through
    ``AWS_ENDPOINT_URL``), otherwise to the bucket's virtual-hosted AWS address.
    """
    text = os.fspath(url)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return Location("http", text, http_url=text)
    if scheme == "s3":
        rest = text[5:]
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise ValueError(f"not an s3://bucket/key URL: {redact_url(text)}")
        region = region or s3_region_from_env()
        endpoint = endpoint_url or s3_endpoint_from_env()
        quoted = quote(key, safe="/~-._")
        if endpoint:
            http_url = f"{endpoint.rstrip('/')}/{bucket}/{quoted}"
        else:
            http_url = f"https://{bucket}.s3.{region}.amazonaws.com/{quoted}"
        return Location("http", text, http_url=http_url, s3_bucket=bucket, s3_region=region)
    if scheme in ("", "file"):
        path = Path(text[7:] if scheme == "file" else text)
        return Location("file", text, path=path)
    raise ValueError(f"unsupported URL scheme {scheme!r} (use http, https, s3 or a local path)")
