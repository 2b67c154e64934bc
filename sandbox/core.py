"""The sandbox: SeaweedFS as the S3 server plus the Nuxeo-compatible server, started together."""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from .nuxeo_server import BATCH_TTL_S, NuxeoServer
from .s3 import AccessPolicy, SeaweedS3


@dataclass(frozen=True)
class SandboxInfo:
    """How to reach a running sandbox.

    `nuxeo_url` is `http://127.0.0.1:PORT/nuxeo`; pass it as `nuxeo.client.Nuxeo(host=...)`
    as is (the client appends the trailing `/` it needs).
    """

    nuxeo_url: str
    user: str
    password: str
    s3_endpoint: str
    bucket: str
    region: str
    # The S3 operator's keys: for administration only, never handed to upload batches.
    s3_access_key_id: str
    s3_secret_access_key: str
    data_dir: str
    # What batch credentials may do: "stock" or "permissive" (see `AccessPolicy`).
    policy: str = AccessPolicy.STOCK.value

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def admin_client(self) -> Any:
        """A boto3 S3 client with the operator's keys (for checks and cleanup)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.s3_endpoint, region_name=self.region,
            aws_access_key_id=self.s3_access_key_id, aws_secret_access_key=self.s3_secret_access_key,
            config=Config(s3={"addressing_style": "path"}),
        )


class Sandbox:
    """A local S3 server and a Nuxeo-compatible server that hands out per-batch credentials.

    It behaves like a stock Nuxeo server unless told otherwise: `policy` says what batch
    credentials may do, `handler_name` names the S3 upload handler, `batch_ttl_s` is how long a
    batch lives (see `NuxeoServer` for the settings that can change while it runs).

    With `data_dir=None` everything lives in a temporary directory removed by `stop()`; with a
    directory the state persists (S3 data in `data_dir/s3`, Nuxeo state in `data_dir/nuxeo.db`).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        user: str = "Administrator",
        password: str | None = None,
        credential_ttl_s: int = 3600,
        default_handler_first: bool = False,
        key_prefix: str = "upload/",
        policy: AccessPolicy | str = AccessPolicy.STOCK,
        handler_name: str = "s3",
        batch_ttl_s: float = BATCH_TTL_S,
        refresh_token: bool = True,
        complete_delay_s_per_gib: float = 0.0,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="nxup-sandbox-"))
        )
        self.user = user
        self.password = password or secrets.token_urlsafe(18)
        self.s3 = SeaweedS3(data_dir=self.data_dir / "s3", credential_ttl_s=credential_ttl_s)
        self.nuxeo = NuxeoServer(
            s3=self.s3,
            data_dir=self.data_dir,
            user=user,
            password=self.password,
            port=port,
            key_prefix=key_prefix,
            default_handler_first=default_handler_first,
            policy=policy,
            handler_name=handler_name,
            batch_ttl_s=batch_ttl_s,
            refresh_token=refresh_token,
            complete_delay_s_per_gib=complete_delay_s_per_gib,
        )
        self._info: SandboxInfo | None = None

    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise RuntimeError("the sandbox is not running")
        return self._info

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.s3.start()
            self.nuxeo.start()
        except BaseException:
            self.stop()
            raise
        self._info = SandboxInfo(
            nuxeo_url=self.nuxeo.base_url,
            user=self.user,
            password=self.password,
            s3_endpoint=self.s3.endpoint,
            bucket=self.s3.bucket,
            region=self.s3.region,
            s3_access_key_id=self.s3.access_key_id,
            s3_secret_access_key=self.s3.secret_access_key,
            data_dir=str(self.data_dir),
            policy=self.nuxeo.policy.value,
        )
        return self

    def stop(self) -> None:
        """Stop both servers; the S3 process is stopped even if the Nuxeo server fails to."""
        self._info = None
        try:
            self.nuxeo.stop()
        finally:
            try:
                self.s3.stop()
            finally:
                if self._own_dir:
                    shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
