"""The environment's HTTP settings (proxies, CA bundle) for one server, read once.

`requests` reads them on every request, which costs more than the rest of a small call; a
server's settings do not change during a run.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from requests.utils import get_environ_proxies


def read_environment_once(session: requests.Session, url: str) -> None:
    """Proxies and CA bundle from the environment, read once for the server instead of on every
    request (requests reads them per request, which costs more than the rest of a small call)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    session.proxies.update(get_environ_proxies(url))
    session.trust_env = False
    merge = session.merge_environment_settings

    def with_environment_bundle(url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        # As requests does with the environment read: a bundle named there replaces the default.
        if bundle and (verify is True or verify is None):
            verify = bundle
        return merge(url, proxies, stream, verify, cert)

    session.merge_environment_settings = with_environment_bundle  # type: ignore[method-assign]


__all__ = ["read_environment_once"]
