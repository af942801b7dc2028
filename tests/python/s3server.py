"""A loopback S3 server for the object-storage tests: moto's ``ThreadedMotoServer`` on
127.0.0.1 (a free port), with helpers to create buckets and upload files or directory trees
through boto3, and the environment atlasfs runs with to reach it.

The credentials are fake and distinctive (``CREDENTIALS``), so a scan of logs and outputs can
tell whether any of them leaked.  The server accepts any credentials.

Use::

    server = S3Server()                      # started
    bucket = server.create_bucket("fixtures")
    server.upload_tree(bucket, "agg", "/path/to/dir")      # keys agg/<relative path>
    env = atlasfs_env()                      # AWS_* variables for `atlasfs`
    storage = storage_table(server.endpoint) # the [dataset.storage] table of a mount config
    server.stop()
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from pathlib import Path

REGION = "us-east-1"

# Fake credentials, distinctive enough that finding one in a log means it leaked.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAATLASFSQ7XKZ3TST",
    "AWS_SECRET_ACCESS_KEY": "atlasfsFakeSecret/9wQz+Lr4Vt2Np8Yb6Hc1Jm5Ks0Df3Gx",
    "AWS_SESSION_TOKEN": "atlasfsFakeSessionToken//Zm9vYmFyYmF6cXV4Q29ycmVjdEhvcnNl7Kp2",
}

# Variables that could point atlasfs elsewhere than the loopback server; removed from its
# environment (``None`` values: see conftest.run_atlasfs).
_CLEARED = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT", "AWS_ALLOW_HTTP", "AWS_BUCKET", "AWS_BUCKET_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_SKIP_SIGNATURE",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
)

_bucket_counter = itertools.count()


def atlasfs_env(*, credentials: bool = True, log: str | None = None,
                config_dir: str | os.PathLike | None = None) -> dict:
    """Environment overrides for running ``atlasfs`` against the loopback server.

    ``credentials``: the fake credentials of ``CREDENTIALS`` (else none at all);
    ``log``: an ``ATLASFS_LOG`` filter; ``config_dir``: where empty AWS profile files are
    written (so a machine's own ~/.aws never takes part).  ``None`` values mean "remove".
    """
    env: dict = {name: None for name in _CLEARED}
    env.update({name: None for name in CREDENTIALS})
    if credentials:
        env.update(CREDENTIALS)
    env["AWS_REGION"] = REGION
    env["AWS_DEFAULT_REGION"] = REGION
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if config_dir is not None:
        d = Path(config_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config").write_text("")
        (d / "credentials").write_text("")
        env["AWS_CONFIG_FILE"] = str(d / "config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(d / "credentials")
    if log is not None:
        env["ATLASFS_LOG"] = log
    return env


def storage_table(endpoint: str, *, anonymous: bool = False, region: str = REGION) -> dict:
    """The ``[dataset.storage]`` table of a mount config for a loopback endpoint."""
    return {"region": region, "endpoint": endpoint, "anonymous": anonymous}


def s3_url(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


class S3Server:
    """moto's S3 on 127.0.0.1, started on construction."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self._client = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, endpoint: str | None = None):
        """A boto3 S3 client with the fake credentials (path-style addressing); by default
        straight to the server, or to ``endpoint`` (e.g. the faulty proxy)."""
        import boto3
        from botocore.config import Config

        if endpoint is None and self._client is not None:
            return self._client
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=10, read_timeout=60),
        )
        if endpoint is None:
            self._client = client
        return client

    def create_bucket(self, prefix: str = "atlasfs", *, public: bool = False) -> str:
        """Creates a bucket with a new name starting with ``prefix``; returns the name.
        ``public``: anyone may list it and read its objects without credentials (a bucket
        policy); otherwise unsigned requests are denied (403)."""
        base = re.sub(r"[^a-z0-9-]", "-", prefix.lower()).strip("-")[:40] or "atlasfs"
        name = f"{base}-{os.getpid()}-{next(_bucket_counter)}"
        self.client().create_bucket(Bucket=name)
        if public:
            policy = {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                }],
            }
            self.client().put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        return name

    def upload_file(self, bucket: str, key: str, path) -> str:
        """Uploads one file as ``key``; returns the key."""
        with open(path, "rb") as f:
            self.client().put_object(Bucket=bucket, Key=key, Body=f.read())
        return key

    def upload_bytes(self, bucket: str, key: str, data: bytes) -> str:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)
        return key

    def upload_tree(self, bucket: str, prefix: str, directory) -> list[str]:
        """Uploads every file under ``directory`` as ``<prefix>/<relative path>``; returns the
        keys, sorted."""
        directory = Path(directory)
        keys = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = path.relative_to(directory).as_posix()
            key = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
            keys.append(self.upload_file(bucket, key, path))
        return sorted(keys)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            out.extend(obj["Key"] for obj in page.get("Contents", ()))
        return sorted(out)

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def stop(self) -> None:
        self._server.stop()
