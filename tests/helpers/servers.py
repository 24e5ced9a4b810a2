"""Starting the real local servers the tests talk to (S3-compatible object store, moto)."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SHARED_DIR = Path(os.environ.get("RASTERET_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))
FIXTURES = SHARED_DIR / "fixtures"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoS3:
    """A moto S3 server with a public-read and a private bucket, both holding the fixtures."""

    endpoint_url: str
    region: str
    public_bucket: str
    private_bucket: str
    keys: list[str]

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


@contextmanager
def moto_s3_server(upload: list[Path], base: Path) -> Iterator[MotoS3]:
    """Start moto on 127.0.0.1 and upload ``upload`` files under keys relative to ``base``."""
    from moto.server import ThreadedMotoServer

    import boto3

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = MotoS3(f"http://127.0.0.1:{port}", "us-west-2", "rasteret-public", "rasteret-private", [])
        client = boto3.client(
            "s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        config = {"LocationConstraint": s3.region}
        client.create_bucket(Bucket=s3.public_bucket, CreateBucketConfiguration=config, ACL="public-read")
        client.create_bucket(Bucket=s3.private_bucket, CreateBucketConfiguration=config)
        for path in upload:
            key = path.relative_to(base).as_posix()
            for bucket in (s3.public_bucket, s3.private_bucket):
                extra = {"ACL": "public-read"} if bucket == s3.public_bucket else {}
                client.upload_file(str(path), bucket, key, ExtraArgs=extra)
            s3.keys.append(key)
        yield s3
    finally:
        server.stop()
