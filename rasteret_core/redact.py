"""Credential-free URLs: what rasteret prints, logs and stores instead of a signed URL.

A leaf module (standard library only), so that every error message, the location policy
and the stores can use it without depending on each other.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters of presigned/tokenised URLs: exact names, lower case...
_SECRET_QUERY_KEYS = {
    "signature", "awsaccesskeyid", "sig", "se", "st", "sp", "sv", "sr", "spr", "srt", "ss", "si",
    "skoid", "sktid", "skt", "ske", "sks", "skv", "token", "access_token", "security-token",
    "policy", "key-pair-id", "expires",
}
# ...and prefixes: every X-Amz-* (SigV4 query auth) and X-Goog-* (GCS signed URLs) parameter
_SECRET_QUERY_PREFIXES = ("x-amz-", "x-goog-")
REDACTED = "REDACTED"


def is_secret_query_key(key: str) -> bool:
    """Whether a query parameter of an href carries a signature, token or expiry."""
    k = key.lower()
    return k in _SECRET_QUERY_KEYS or k.startswith(_SECRET_QUERY_PREFIXES)


def split_url(url: str):
    """``urlsplit``, or ``None`` for text it cannot split (e.g. an unbalanced ``[``)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
        return parts
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """``url`` without user info and with signature/token/expiry query values replaced.

    Covers SigV4 (``X-Amz-*``), GCS (``X-Goog-*``), Azure SAS (``sig``, ``se``, ``st``,
    ``sp``, ...), CloudFront (``Signature``, ``Policy``, ``Key-Pair-Id``) and bearer
    ``token`` parameters. Anything that is not a URL is returned as text.
    """
    if not isinstance(url, str) or "://" not in url:
        return str(url)
    parts = split_url(url)
    if parts is None:  # not a URL a client would send: keep only the scheme and what is safe
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('?', 1)[0].split('#', 1)[0].rpartition('@')[2]}"
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        kept = [(k, REDACTED if is_secret_query_key(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(kept, safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_redacted(url: str) -> bool:
    """Whether ``url`` had its secrets removed by :func:`redact_url` (it needs re-signing)."""
    parts = split_url(url) if isinstance(url, str) and "://" in url else None
    if parts is None:
        return False
    return any(is_secret_query_key(k) and v == REDACTED for k, v in parse_qsl(parts.query))


def strip_secrets(url: str) -> str:
    """``url`` without user info and without its signature/token/expiry parameters: what a
    read-time :data:`Signer` is given to sign afresh."""
    parts = split_url(url) if isinstance(url, str) and "://" in url else None
    if parts is None:
        return redact_url(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_secret_query_key(k)]
    return urlunsplit((parts.scheme, urlsplit(redact_url(url)).netloc, parts.path, urlencode(kept, safe=""), ""))


def redact_hrefs(value):
    """A copy of a STAC structure (assets, links) with every ``href`` passed through
    :func:`redact_url`: what is stored never holds a signature or token."""
    if isinstance(value, dict):
        return {k: redact_url(v) if k == "href" and isinstance(v, str) else redact_hrefs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_hrefs(v) for v in value]
    return value
