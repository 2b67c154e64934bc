"""Where `nxup login` keeps a Nuxeo token: the system keyring when it has a real one (macOS
Keychain, Windows Credential Locker, the Secret Service), else `tokens`, a 0600 INI file in the
config dir. One token per (server URL, user), with the device id it was acquired for, which
revoking it needs. A password is never kept.

`PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring` (keyring's own setting) keeps tokens in
the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.profiles import config_dir, ini_text, read_ini, write_private

TOKENS_FILENAME = "tokens"
KEYRING_SERVICE = "nxup"
# Backends that keep nothing, or keep it in plain text or behind a prompt of their own: the
# 0600 file says what it is more plainly.
_UNSUITABLE_BACKENDS = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True, slots=True)
class StoredToken:
    token: str = field(repr=False)
    device_id: str


def _entry(url: str, user: str) -> str:
    return f"{user}@{url}"


def _keyring() -> Any | None:
    """The keyring backend nxup may keep tokens in, or None."""
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend

        backend = keyring.get_keyring()
    except Exception:  # keyring missing or its set-up broken: the file is there for that
        return None
    chained = backend.backends if isinstance(backend, ChainerBackend) else [backend]
    suitable = [b for b in chained if not type(b).__module__.startswith(_UNSUITABLE_BACKENDS)]
    return backend if suitable else None


class TokenStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.file = (directory or config_dir()) / TOKENS_FILENAME

    def get(self, url: str, user: str) -> StoredToken | None:
        backend = _keyring()
        if backend is not None:
            try:
                text = backend.get_password(KEYRING_SERVICE, _entry(url, user))
            except Exception:  # a locked or unreachable keyring: the file may still have one
                text = None
            stored = _parsed(text)
            if stored is not None:
                return stored
        parser = read_ini(self.file)
        entry = _entry(url, user)
        if parser.has_section(entry) and parser[entry].get("token"):
            return StoredToken(parser[entry]["token"], parser[entry].get("device_id", ""))
        return None

    def put(self, url: str, user: str, stored: StoredToken) -> str:
        """Keep `stored` for (url, user), replacing what was kept; says where it went."""
        backend = _keyring()
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, _entry(url, user),
                                     json.dumps({"token": stored.token, "device_id": stored.device_id}))
            except Exception:  # refused (locked, no session bus...): the file instead
                pass
            else:
                self._forget_in_file(url, user)
                return f"the system keyring ({type(backend).__name__})"
        parser = read_ini(self.file)
        entry = _entry(url, user)
        if not parser.has_section(entry):
            parser.add_section(entry)
        parser[entry]["token"] = stored.token
        parser[entry]["device_id"] = stored.device_id
        write_private(self.file, ini_text(parser))
        return f"{self.file} (readable by you only)"

    def forget(self, url: str, user: str) -> bool:
        """Forget the token of (url, user) wherever it is kept; whether there was one."""
        forgotten = False
        backend = _keyring()
        if backend is not None:
            try:
                if backend.get_password(KEYRING_SERVICE, _entry(url, user)) is not None:
                    backend.delete_password(KEYRING_SERVICE, _entry(url, user))
                    forgotten = True
            except Exception:
                pass
        return self._forget_in_file(url, user) or forgotten

    def _forget_in_file(self, url: str, user: str) -> bool:
        parser = read_ini(self.file)
        if not parser.remove_section(_entry(url, user)):
            return False
        write_private(self.file, ini_text(parser))
        return True


def _parsed(text: str | None) -> StoredToken | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("token"), str) or not value["token"]:
        return None
    return StoredToken(value["token"], str(value.get("device_id", "")))


__all__ = ["KEYRING_SERVICE", "TOKENS_FILENAME", "StoredToken", "TokenStore"]
