"""The local sandbox: an S3 server (SeaweedFS) and a Nuxeo-compatible server."""

from .core import Sandbox, SandboxInfo
from .process import SandboxProcess
from .s3 import SeaweedS3

__all__ = ["Sandbox", "SandboxInfo", "SandboxProcess", "SeaweedS3"]
