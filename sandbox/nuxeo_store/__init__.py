"""The sandbox Nuxeo server's state in SQLite, so that a persistent sandbox survives restarts:
the store (`store`), what it keeps (`records`), and one module per table: the document tree
(`documents`), upload batches and their files (`batches`), authentication tokens (`tokens`) and
idempotency keys with their answers (`idempotency_keys`)."""

from .records import (
    DEFAULT_HANDLER,
    BatchFile,
    BatchRecord,
    Claim,
    DocRecord,
    StoredAnswer,
    StoredBlob,
    now_iso,
)
from .store import Store

__all__ = [
    "DEFAULT_HANDLER",
    "BatchFile",
    "BatchRecord",
    "Claim",
    "DocRecord",
    "Store",
    "StoredAnswer",
    "StoredBlob",
    "now_iso",
]
