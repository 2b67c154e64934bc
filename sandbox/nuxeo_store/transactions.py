"""How a table of the store runs its statements: inside the store's (nestable) transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

# `Store.transaction`: only its outermost level commits (or rolls back on error).
Transactions = Callable[[], AbstractContextManager[sqlite3.Connection]]
