"""Nuxeo authentication tokens, through the real `nuxeo` client: one acquired with the user's
password for this device (GET /authentication/token), used instead of the password from then on,
and revoked by its owner (the same call with `revoke=true`)."""

from __future__ import annotations

from nuxeo.exceptions import NuxeoError
from requests.exceptions import RequestException

from .errors import NxupError, ServerFailed, translate_nuxeo_error
from .nuxeo_batch import APP_NAME, NuxeoBatchClient, ServerConnection

# What the token may do: uploading writes documents.
TOKEN_PERMISSION = "ReadWrite"


def acquire_token(connection: ServerConnection, *, device_id: str, device: str) -> str:
    """A token for `connection`'s user on this device; the login is checked first, so that a
    wrong password or a URL that is no Nuxeo server reads as such."""
    client = NuxeoBatchClient(connection)
    try:
        client.check_login()
        token = _call(client, "acquiring a token", device_id=device_id, device=device, revoke=False)
    finally:
        client.close()
    if not token:
        raise ServerFailed("Nuxeo answered the token request without a token")
    return token


def revoke_token(connection: ServerConnection, *, device_id: str) -> None:
    """Revoke the token of `device_id` (`connection` may log in with that very token)."""
    client = NuxeoBatchClient(connection)
    try:
        _call(client, "revoking the token", device_id=device_id, device=None, revoke=True)
    finally:
        client.close()


def _call(client: NuxeoBatchClient, action: str, *, device_id: str, device: str | None, revoke: bool) -> str:
    try:
        return str(client.nuxeo.client.request_auth_token(
            device_id=device_id, permission=TOKEN_PERMISSION, app_name=APP_NAME, device=device, revoke=revoke))
    except NxupError:
        raise
    except (NuxeoError, RequestException, ValueError) as exc:
        raise translate_nuxeo_error(exc, action=action) from exc


__all__ = ["TOKEN_PERMISSION", "acquire_token", "revoke_token"]
