"""The local sandbox: an S3 server (SeaweedFS) and a Nuxeo-compatible server."""

from .core import Sandbox, SandboxInfo
from .nuxeo_server import BATCH_TTL_S, NuxeoServer
from .process import SandboxProcess
from .s3 import AccessPolicy, SeaweedS3

__all__ = [
    "BATCH_TTL_S",
    "AccessPolicy",
    "NuxeoServer",
    "Sandbox",
    "SandboxInfo",
    "SandboxProcess",
    "SeaweedS3",
]
