"""Admin access to a bucket: its S3 client from boto3's usual credential chain, and what the
stale-uploads screen is given to list a bucket (`StaleSource`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError

from .failures import StaleError
from .scanner import PART_COUNT_WORKERS
from .uploads import Clock, utc_now


@dataclass(frozen=True, slots=True)
class S3AdminConfig:
    """Direct S3 access for an admin. Keys come from boto3's usual chain (environment,
    profiles, instance roles); the explicit ones are for programs (the demo), never argv."""

    bucket: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> S3AdminConfig | None:
        """The admin's bucket from NXUP_S3_BUCKET (and NXUP_S3_ENDPOINT, _REGION, _PROFILE),
        or None when it is not set."""
        bucket = os.environ.get("NXUP_S3_BUCKET")
        if not bucket:
            return None
        return cls(bucket=bucket, endpoint=os.environ.get("NXUP_S3_ENDPOINT"),
                   region=os.environ.get("NXUP_S3_REGION"), profile=os.environ.get("NXUP_S3_PROFILE"))

    def client(self) -> Any:
        import boto3  # only with admin keys: every upload's start-up imports this package

        try:
            session = boto3.session.Session(profile_name=self.profile)
        except BotoCoreError as exc:  # an unknown profile
            raise StaleError(f"cannot use the AWS profile {self.profile}: {exc}") from exc
        keys: dict[str, str] = {}
        if self.access_key_id and self.secret_access_key:
            keys = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        elif session.get_credentials() is None:
            raise StaleError(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or name an AWS profile (--s3-profile)"
            )
        config = Config(
            region_name=self.region or session.region_name or "us-east-1",
            retries={"mode": "standard", "max_attempts": 4},
            max_pool_connections=PART_COUNT_WORKERS + 2,
            # S3-compatible servers on a custom endpoint rarely have virtual-host DNS names.
            s3={"addressing_style": "path" if self.endpoint else "auto"},
        )
        return session.client("s3", endpoint_url=self.endpoint, config=config, **keys)


@dataclass(frozen=True)
class StaleSource:
    """Admin access to a bucket for the stale-uploads screen (never built from argv): which
    bucket, the prefix to start with, and the clock ages are counted with."""

    admin: S3AdminConfig
    prefix: str = ""
    now: Clock = field(default=utc_now, repr=False)

    @classmethod
    def from_env(cls) -> StaleSource | None:
        admin = S3AdminConfig.from_env()
        return None if admin is None else cls(admin)
