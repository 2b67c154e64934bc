"""Who is calling the sandbox Nuxeo server: Basic and token authentication, the token endpoint
and the current user."""

from __future__ import annotations

import base64
import binascii
import hmac
from email.message import Message
from http import HTTPStatus
from typing import TYPE_CHECKING

from .nuxeo_http import API, NuxeoError, Request, Response, Route, bad_request, route, truthy

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer


class Authentication:
    """The server's single user, with its password or the tokens it acquired."""

    def __init__(self, server: NuxeoServer, password: str) -> None:
        self._server = server
        self._password = password

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/authentication/token", self._auth_token),
            route("GET", rf"(?:/site)?{API}/me", self._me),
        ]

    def authenticate(self, headers: Message) -> str:
        token = headers.get("X-Authentication-Token")
        if token is not None:
            user = self._server.store.tokens.user_of(token) if token else None
            if user:
                return user
            raise NuxeoError(HTTPStatus.UNAUTHORIZED, "Invalid authentication token")
        user = self._basic_user(headers.get("Authorization") or "")
        if user:
            return user
        raise NuxeoError(HTTPStatus.UNAUTHORIZED, "Authentication required")

    def _basic_user(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        good_user = hmac.compare_digest(user.encode(), self._server.user.encode())
        good_password = hmac.compare_digest(password.encode(), self._password.encode())
        return user if good_user and good_password else None

    def _me(self, request: Request) -> Response:
        groups = ["administrators"]
        return Response.json(
            {
                "entity-type": "user",
                "id": request.user,
                "properties": {
                    "username": request.user,
                    "firstName": "",
                    "lastName": "",
                    "email": "",
                    "company": "",
                    "groups": groups,
                    "tenantId": None,
                },
                "extendedGroups": [{"name": g, "label": g, "url": f"group/{g}"} for g in groups],
                "isAdministrator": True,
                "isAnonymous": False,
            }
        )

    def _auth_token(self, request: Request) -> Response:
        query = request.query
        app, device_id = query.get("applicationName"), query.get("deviceId")
        permission = query.get("permission")
        if not app or not device_id or not permission:
            raise bad_request("applicationName, deviceId and permission are required")
        if truthy(query.get("revoke")):
            if not self._server.store.tokens.revoke(request.user, app, device_id):
                raise bad_request(f"No token found for application {app} and device {device_id}")
            # Real Nuxeo answers 202 with a sentence; the client ignores the body on revoke.
            return Response.text(f"Token revoked for device {device_id}.", HTTPStatus.ACCEPTED)
        token = self._server.store.tokens.acquire(
            request.user, app, device_id, permission, query.get("deviceDescription")
        )
        # No trailing newline: the client would silently replace the token by "".
        return Response.text(token, HTTPStatus.CREATED)
