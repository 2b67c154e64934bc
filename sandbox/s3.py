"""SeaweedFS (`weed mini`) as the sandbox's S3 server, with STS for per-batch credentials.

The server binds 127.0.0.1 only, on free ports, with access keys (never an open gateway), and
runs an STS on its S3 port so that each upload batch gets its own temporary credentials, minted
with `AssumeRole` like a real Nuxeo server does. The process is `weed.WeedProcess`; who may do
what is `s3_identities`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from .s3_identities import AccessPolicy, iam_config, session_policy
from .weed import PortTakenError, SandboxError, WeedProcess

__all__ = ["AccessPolicy", "ObjectHead", "PortTakenError", "SandboxError", "SeaweedS3", "TemporaryCredentials"]

REGION = "us-east-1"


@dataclass(frozen=True)
class ObjectHead:
    length: int
    etag: str
    content_type: str | None


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


class SeaweedS3:
    """A running `weed mini` with one bucket, an operator identity and an STS role.

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        bucket: str = "nuxeo",
        credential_ttl_s: int = 3600,
    ) -> None:
        if credential_ttl_s < 1:
            raise ValueError("credential_ttl_s must be at least 1 second")
        self.bucket = bucket
        self.region = REGION
        self.credential_ttl_s = credential_ttl_s
        self._own_dir = data_dir is None
        self.root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="nxup-s3-"))
        self.access_key_id = "OP" + secrets.token_hex(9).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.weed = WeedProcess(self.root)
        self._head_pool = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(connect=10, read=60))
        self._sts: Any = None
        self._probe: tuple[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.weed.s3_port}"

    @property
    def ports(self) -> dict[str, int]:
        return self.weed.ports

    @property
    def process(self) -> Any:
        return self.weed.process

    def _write_config(self) -> Path:
        config = iam_config(bucket=self.bucket, access_key_id=self.access_key_id,
                            secret_access_key=self.secret_access_key, credential_ttl_s=self.credential_ttl_s)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "iam.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle)
        return path

    def start(self) -> SeaweedS3:
        self.weed.start(self._write_config(), ready=self._bucket_ready)
        self._sts = boto3.session.Session().client(
            "sts",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        return self

    def _bucket_ready(self) -> bool:
        """Whether S3 answers with the bucket there (made on the first answer)."""
        # One client per start: the ports change when a start is tried again.
        if self._probe is None or self._probe[0] != self.endpoint:
            self._probe = (self.endpoint, self.admin_client(max_attempts=1))
        client = self._probe[1]
        try:
            client.head_bucket(Bucket=self.bucket)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                return False
            try:
                client.create_bucket(Bucket=self.bucket)
                return True
            except (ClientError, BotoCoreError):
                return False
        except BotoCoreError:
            return False

    def stop(self) -> None:
        self.weed.stop()
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------
    def head_object(self, key: str) -> ObjectHead | None:
        """HEAD `key` with the operator's keys; None when there is no such object.

        What a Nuxeo server does on each `/complete`. A signed request on a kept-alive
        connection instead of a boto3 call: the sandbox runs on the same cores as the client it
        serves, and a boto3 call costs it more CPU than the rest of the request."""
        url = f"{self.endpoint}/{self.bucket}/{quote(key, safe='/~')}"
        request = AWSRequest(method="HEAD", url=url)
        request.context["payload_signing_enabled"] = False
        S3SigV4Auth(
            Credentials(self.access_key_id, self.secret_access_key), "s3", self.region
        ).add_auth(request)
        answer = self._head_pool.request(
            "HEAD", url, headers=dict(request.headers.items()), retries=False, redirect=False
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise SandboxError(f"HEAD {key} answered {answer.status}")
        return ObjectHead(
            length=int(answer.headers["Content-Length"]),
            etag=answer.headers.get("ETag", ""),
            content_type=answer.headers.get("Content-Type"),
        )

    def admin_client(self, *, max_attempts: int = 3) -> Any:
        """A boto3 S3 client with the operator's keys (for the server and for admins)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": max_attempts, "mode": "standard"},
            ),
        )

    def mint_credentials(
        self, *, session_name: str, key_prefix: str, policy: AccessPolicy
    ) -> TemporaryCredentials:
        """Temporary credentials as Nuxeo's AssumeRole mints them, under `policy`."""
        if self._sts is None:
            raise SandboxError("the S3 server is not running")
        role, document = session_policy(policy, bucket=self.bucket, key_prefix=key_prefix)
        answer = self._sts.assume_role(RoleArn=role, RoleSessionName=session_name, Policy=json.dumps(document))
        creds = answer["Credentials"]
        return TemporaryCredentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
        )
