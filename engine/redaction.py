"""Secrets out of log text: passwords, tokens, S3 credentials and request signatures.

Two nets, because a library may log a secret before nxup has seen it (the Nuxeo client logs the
answer that carries a batch's credentials before it returns it): every secret nxup holds is
remembered here (with the forms it takes in headers and URLs) and replaced wherever it appears,
and the places secrets sit in requests and answers (an Authorization header, a signed URL's
signature, a JSON key such as `awsSessionToken`) are masked whatever their value.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote

MASK = "[redacted]"
# A short value (an empty password, "0") would mask ordinary text by chance.
_SHORTEST_SECRET = 4

_lock = threading.Lock()
_secrets: set[str] = set()
# Compiled when text is next redacted, not when a secret is added: every batch brings new
# credentials, and compiling the alternation of all of them each time grows with the square of
# the batches (seconds for 10,000 small files), while most runs redact little or nothing.
_pattern: re.Pattern[str] | None = None
_pattern_stale = False

_KEYED = re.compile(
    r"""(?ix)
    (  (?:aws)?secret[\w-]*  |  [\w-]*session[_-]?token  |  x-amz-security-token  |  password  |  passwd
     | x-authentication-token  |  awssecretkeyid  |  access[_-]?key(?:[_-]?id)?  |  token )
    (  ['"]?\s*[:=]\s*b?['"]?  )
    ( [^'"\s,;&}\]]+ )
    """
)
# The whole value, to the end of its quotes or of its line: a scheme, a user, a signature.
_AUTHORIZATION = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*(?-i:b)?['\"]?)([^'\"\n]+)")
# A request's signature in its Authorization header or its URL, and botocore's "Signature:\n<hex>".
_SIGNATURE = re.compile(r"(?i)((?:x-amz-)?signature(?:=|:\s*)|credential=)([^&\s,'\"]+)")


def remember_secret(value: str | None) -> None:
    """Mask `value` (and its URL-quoted form) in every log line from now on."""
    if not value or len(value) < _SHORTEST_SECRET:
        return
    global _pattern_stale
    with _lock:
        new = {value, quote(value, safe="")} - _secrets
        if new:
            _secrets.update(new)
            _pattern_stale = True


def _secrets_pattern() -> re.Pattern[str] | None:
    global _pattern, _pattern_stale
    if not _pattern_stale:
        return _pattern
    with _lock:
        if _pattern_stale:
            ordered = sorted(_secrets, key=len, reverse=True)  # the longest form first
            _pattern = re.compile("|".join(re.escape(secret) for secret in ordered))
            _pattern_stale = False
        return _pattern


def remember_login(user: str, password: str | None) -> None:
    """A password and the Basic authorization header it makes with its user."""
    if password:
        remember_secret(password)
        remember_secret(base64.b64encode(f"{user}:{password}".encode()).decode())


def redact(text: str) -> str:
    """`text` with every secret masked."""
    pattern = _secrets_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, text)
    text = _SIGNATURE.sub(lambda m: m.group(1) + MASK, text)
    return _KEYED.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


__all__ = ["MASK", "redact", "remember_login", "remember_secret"]
