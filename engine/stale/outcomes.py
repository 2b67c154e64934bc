"""What aborting an upload came to: an outcome from a fixed set, with a line for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .uploads import StaleUpload, total_bytes


class AbortOutcome(StrEnum):
    ABORTED = "aborted"
    ALREADY_GONE = "already gone"  # completed or aborted meanwhile: gone either way
    WOULD_ABORT = "would abort"  # a dry run
    CANCELLED = "cancelled"  # the transfer manager holding the file cancelled it
    IN_USE = "in use"  # a running nxup sends it: left to it, not a failure
    # nxup has no credentials that may abort it: the server's clean-up or an admin removes it.
    BATCH_GONE = "batch gone"  # its batch expired on Nuxeo
    DENIED = "denied"  # a stock Nuxeo's batch credentials may upload only
    FAILED = "failed"

    @property
    def ok(self) -> bool:
        return self in _DONE

    @property
    def left_to_server(self) -> bool:
        return self in (AbortOutcome.BATCH_GONE, AbortOutcome.DENIED)


_DONE = frozenset({AbortOutcome.ABORTED, AbortOutcome.ALREADY_GONE, AbortOutcome.WOULD_ABORT, AbortOutcome.CANCELLED})


@dataclass(frozen=True, slots=True)
class AbortResult:
    upload: StaleUpload
    outcome: AbortOutcome
    detail: str = ""  # why it was not aborted (the outcomes that succeed need none)

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def left_to_server(self) -> bool:
        return self.outcome.left_to_server

    @property
    def in_use(self) -> bool:
        return self.outcome is AbortOutcome.IN_USE

    @property
    def message(self) -> str:
        """One line for people: the outcome, or why it was not aborted."""
        return self.detail or self.outcome.value


@dataclass(slots=True)
class AbortReport:
    dry_run: bool
    results: list[AbortResult] = field(default_factory=list)

    @property
    def succeeded(self) -> list[AbortResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[AbortResult]:
        return [r for r in self.results if not r.ok and not r.in_use]

    @property
    def in_use(self) -> list[AbortResult]:
        return [r for r in self.results if r.in_use]

    @property
    def bytes_freed(self) -> int:
        return total_bytes(r.upload for r in self.succeeded)
