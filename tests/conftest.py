"""Sandbox fixtures: one real sandbox (SeaweedFS + the Nuxeo-compatible server) per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nuxeo.client import Nuxeo

from sandbox import Sandbox, SandboxInfo


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def make_nuxeo(sandbox: Sandbox) -> Callable[..., Nuxeo]:
    """Build a real `nuxeo` client for a sandbox (the session one unless given)."""

    def make(info: SandboxInfo | None = None, **kwargs: Any) -> Nuxeo:
        info = info or sandbox.info
        kwargs.setdefault("auth", (info.user, info.password))
        return Nuxeo(host=info.nuxeo_url, **kwargs)

    return make


@pytest.fixture
def nuxeo(make_nuxeo: Callable[..., Nuxeo]) -> Nuxeo:
    return make_nuxeo()


@pytest.fixture
def s3_admin(sandbox: Sandbox) -> Any:
    return sandbox.s3.admin_client()
