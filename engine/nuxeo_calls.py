"""The one translation of the `nuxeo` client's and the network's errors into engine errors, for
every Nuxeo call."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from nuxeo.exceptions import NuxeoError
from requests.exceptions import RequestException

from .errors import NxupError, translate_nuxeo_error

_P = ParamSpec("_P")
_R = TypeVar("_R")


def nuxeo_call(action: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: translate client and network errors into engine errors naming the action.
    A bug of nxup's own (a TypeError, an AttributeError) is not one: it goes through as is."""

    def wrap(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def inner(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except NxupError:
                raise
            except (NuxeoError, RequestException, ValueError, KeyError) as exc:
                raise translate_nuxeo_error(exc, action=action) from exc

        return inner

    return wrap
