"""The one translation of the `nuxeo` client's and the network's errors into engine errors, for
every Nuxeo call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nuxeo.exceptions import NuxeoError
from requests.exceptions import RequestException

from .errors import NxupError, translate_nuxeo_error


def nuxeo_call(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: translate client and network errors into engine errors naming the action."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except NxupError:
                raise
            except (NuxeoError, RequestException, ValueError, KeyError) as exc:
                raise translate_nuxeo_error(exc, action=action) from exc

        inner.__name__ = func.__name__
        inner.__doc__ = func.__doc__
        return inner

    return wrap
