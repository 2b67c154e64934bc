"""What each task on one file does, and how the file goes on after it: *prepare* (open the
file, get or re-check its batch, plan parts, create or reconcile the multipart upload) → *parts*
(each an independent task in the shared pool) → *finish* (complete on S3, complete on Nuxeo,
create the document, drop the batch); and *abort* after a cancel. The work against the servers
is in `file_steps`; these tasks decide what runs next, through the scheduler.
"""

from __future__ import annotations

import threading

from .edges import Clock, S3Calls
from .errors import AccessDenied, BatchGone, FileChanged, IntegrityError, Interrupted, UploadGone
from .events import FileCancelled, FileCompleted, FileSkipped, Notice, PartCompleted
from .file_steps import FileSteps, NextStep
from .finishing import UPLOAD_GONE_NOTICE, NewRound
from .lifecycle import UploadStatus
from .scheduler import NEW_ROUND, P_CLEANUP, P_PART, Scheduler
from .slices import PartCounter, StopReason
from .state import StateStore
from .transfer import FileTransfer, NewRoundCause


class FileTasks:
    """The tasks of every file; one instance per manager. Reason for its length: the three
    stages and the cancel share the same recoveries (a new round, a failure, a settle)."""

    def __init__(self, scheduler: Scheduler, *, steps: FileSteps, s3: S3Calls, store: StateStore,
                 clock: Clock) -> None:
        self._scheduler = scheduler
        self._lock: threading.RLock = scheduler.lock
        self._steps = steps
        self._s3 = s3
        self._store = store
        self._clock = clock

    # == prepare ==============================================================================
    def prepare(self, transfer: FileTransfer, generation: int) -> None:
        with self._lock:
            if generation != transfer.generation:
                return
            if transfer.control.is_interrupted():
                self._scheduler.settle_if_idle(transfer)
                return
            transfer.preparing = True
            transfer.reset_progress()
        next_step: NextStep | None = None
        try:
            next_step = self._steps.prepare(transfer)
        except Interrupted:
            pass
        except Exception as exc:  # every failure becomes a one-line reason on this file
            with self._lock:
                transfer.preparing = False
                transfer.close_file()
            self._scheduler.fail(transfer, exc)
            return
        if next_step is NextStep.SKIPPED:
            self._finish_skipped(transfer)
            return
        if next_step is NextStep.DONE:
            with self._lock:
                transfer.preparing = False
            assert transfer.record.doc_uid is not None
            self._finish_done(transfer, transfer.record.doc_uid, document_path="")
            return
        with self._lock:
            transfer.preparing = False
            if transfer.control.is_interrupted() or next_step is None:
                self._scheduler.settle_if_idle(transfer)
                return
            if next_step is NextStep.FINISH:
                transfer.finishing = True
            pending = list(transfer.pending)
            plan = transfer.plan
        if next_step is NextStep.FINISH:
            # A single upload is sent by the finish step itself (priority of a part).
            self._scheduler.submit((P_PART, transfer.sequence, 0), self.finish, transfer, generation)
            return
        assert plan is not None
        for number in pending:
            self._scheduler.submit_part((P_PART, transfer.sequence, number), plan.part(number).size, self.send_part,
                                        transfer, number, generation)

    # == parts ================================================================================
    def send_part(self, transfer: FileTransfer, number: int, generation: int) -> None:
        with self._lock:
            if generation != transfer.generation or transfer.plan is None:
                return
            if transfer.control.is_interrupted() or transfer.fd is None:
                self._scheduler.settle_if_idle(transfer)
                return
            part = transfer.plan.part(number)
            counter = PartCounter(number=number, size=part.size)
            transfer.in_flight[number] = counter
            if number in transfer.pending:
                transfer.pending.remove(number)
        try:
            part_record = self._s3.send_part(transfer, part=part, counter=counter)
            self._store.record_part(transfer.id, part_record)
        except Interrupted:
            with self._lock:
                transfer.drop_in_flight(number)
                transfer.pending.append(number)
                self._scheduler.settle_if_idle(transfer)
            return
        except (UploadGone, BatchGone) as exc:
            # Recoverable without the user: once the other parts have stopped, a new round
            # takes a new batch or a new multipart upload and sends what S3 lacks.
            cause = NewRoundCause.UPLOAD_GONE if isinstance(exc, UploadGone) else NewRoundCause.BATCH_GONE
            self._stop_for_new_round(transfer, number, cause)
            return
        except IntegrityError as exc:
            # S3 found the part's bytes differ from their checksum: the file was written to
            # while it was read (then it starts over), or the bytes were damaged on the way.
            if self._steps.differs_from_start(transfer):
                self._stop_for_new_round(transfer, number, NewRoundCause.FILE_CHANGED)
            else:
                self._stop_for_failure(transfer, number, exc)
            return
        except FileChanged:
            # The file became shorter under the part being read: it starts over, as one that grew.
            self._stop_for_new_round(transfer, number, NewRoundCause.FILE_CHANGED)
            return
        except AccessDenied as exc:
            if not transfer.batch_replaced:
                self._stop_for_failure(transfer, number, exc)
                return
            # A deployment whose batch credentials cover only their own batch's prefix: the
            # new batch may not go on with the old key, so the file starts over under a new one.
            self._stop_for_new_round(transfer, number, NewRoundCause.KEY_DENIED)
            return
        except Exception as exc:
            self._stop_for_failure(transfer, number, exc)
            return
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.done[number] = part_record
            transfer.done_bytes += part.size
            all_done = len(transfer.done) == transfer.plan.part_count
            interrupted = transfer.control.is_interrupted()
            if all_done and not interrupted:
                transfer.finishing = True
        self._scheduler.emit(PartCompleted(transfer.id, number=number, size=part.size))
        if interrupted:
            with self._lock:
                self._scheduler.settle_if_idle(transfer)
        elif all_done:
            self.finish(transfer)

    def _stop_for_failure(self, transfer: FileTransfer, number: int, error: BaseException) -> None:
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.pending.append(number)
        self._scheduler.fail(transfer, error)
        with self._lock:
            self._scheduler.settle_if_idle(transfer)

    def _stop_for_new_round(self, transfer: FileTransfer, number: int, cause: NewRoundCause) -> None:
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.pending.append(number)
            transfer.new_round_cause = max(cause, transfer.new_round_cause or cause)
            transfer.control.interrupt(NEW_ROUND)
            self._scheduler.settle_if_idle(transfer)

    def start_new_round(self, transfer: FileTransfer) -> None:
        """After a part found the batch or the multipart upload gone (see `send_part`)."""
        cause, transfer.new_round_cause = transfer.new_round_cause, None
        try:
            if cause is NewRoundCause.FILE_CHANGED:
                self._steps.restart_changed(transfer, FileChanged("the file changed while it was being uploaded"))
            elif cause is NewRoundCause.KEY_DENIED:
                notice = "the new upload batch may not write to the old one's key; uploading it again"
                self._steps.restart(transfer, notice=notice)
            elif cause is NewRoundCause.UPLOAD_GONE:
                self._steps.forget_upload(transfer, notice=UPLOAD_GONE_NOTICE)
        except Exception as exc:
            self._failed_while_finishing(transfer, exc)
            return
        self._queued_again(transfer)

    def _queued_again(self, transfer: FileTransfer) -> None:
        """Back in the queue for a new round (its stages start again from the journal)."""
        with self._lock:
            transfer.finishing = False
            self._scheduler.requeue(transfer)
        self._scheduler.admit()

    def _failed_while_finishing(self, transfer: FileTransfer, error: BaseException) -> None:
        with self._lock:
            transfer.finishing = False
        self._scheduler.fail(transfer, error)

    # == finish ===============================================================================
    def finish(self, transfer: FileTransfer, generation: int | None = None, *, on_nuxeo_worker: bool = False) -> None:
        """Runs on the S3 worker that sent the last part (or at prepare, when nothing is left)
        until only Nuxeo requests are left, then goes on on a Nuxeo worker."""
        if generation is not None and generation != transfer.generation:
            return
        try:
            # Stages between requests are journaled together (see `FileSteps.writes_held`).
            with self._steps.writes_held(transfer):
                documented = self._steps.finish(transfer, s3_only=not on_nuxeo_worker)
                if documented:
                    assert transfer.record.doc_uid is not None
                    self._finish_done(transfer, transfer.record.doc_uid, document_path=transfer.document_path)
            if not documented:  # handed over once its journal is written
                self._scheduler.submit_to_nuxeo((P_CLEANUP, transfer.sequence), self._finish_on_nuxeo_worker, transfer)
        except Interrupted:
            with self._lock:
                transfer.finishing = False
                self._scheduler.settle_if_idle(transfer)
        except NewRound:
            self._queued_again(transfer)
        except FileChanged as change:
            try:
                self._steps.restart_changed(transfer, change)
            except Exception as exc:
                self._failed_while_finishing(transfer, exc)
                return
            self._queued_again(transfer)
        except Exception as exc:
            self._failed_while_finishing(transfer, exc)

    def _finish_on_nuxeo_worker(self, transfer: FileTransfer) -> None:
        self.finish(transfer, on_nuxeo_worker=True)

    def _finish_done(self, transfer: FileTransfer, doc_uid: str, *, document_path: str) -> None:
        # Stored while the file still counts as working, and announced before waiters wake:
        # once `wait()` returns, the store says DONE (a caller may close it right away) and the
        # sink has seen the completion.
        self._scheduler.persist(
            transfer, status=UploadStatus.DONE, doc_uid=doc_uid, error=None, finished_at=self._clock.now()
        )
        self._steps.save_held(transfer)
        self._steps.done_with_batch(transfer, more_coming=self._scheduler.files_await_a_batch())
        if transfer.control.reason == StopReason.CANCEL:
            # A cancel that came once every byte was on S3 finishes the file instead of leaving
            # an object no document holds.
            self._scheduler.emit(
                Notice(
                    transfer.id,
                    message=f"{transfer.path}: cancelled too late: its bytes were all on "
                    "S3, so its upload was finished",
                )
            )
        with self._lock:
            transfer.status = UploadStatus.DONE
            transfer.finishing = False
            transfer.done_bytes = transfer.size
            self._scheduler.emit(
                FileCompleted(
                    transfer.id,
                    path=transfer.path,
                    size=transfer.size,
                    document_path=document_path,
                    document_uid=doc_uid,
                    etag=transfer.record.etag or "",
                    version_label=transfer.version_label,
                )
            )
            self._scheduler.release(transfer)
        self._scheduler.admit()

    def _finish_skipped(self, transfer: FileTransfer) -> None:
        """Its name is taken and nothing is sent (the journal says so already, see `existing`)."""
        with self._lock:
            transfer.preparing = False
            transfer.status = UploadStatus.SKIPPED
            self._scheduler.emit(
                FileSkipped(
                    transfer.id,
                    path=transfer.path,
                    reason=transfer.record.note or "",
                    document_path=transfer.document_path,
                )
            )
            self._scheduler.release(transfer)
        self._scheduler.admit()

    # == cancel ===============================================================================
    def abort(self, transfer: FileTransfer) -> None:
        self._steps.abort_multipart_quietly(transfer)
        self._steps.done_with_batch(transfer, more_coming=self._scheduler.files_await_a_batch())
        self._store.forget_parts(transfer.id)
        # As in `_finish_done`: stored and announced before the file stops counting as working.
        self._scheduler.persist(transfer, status=UploadStatus.CANCELLED, finished_at=self._clock.now())
        with self._lock:
            transfer.status = UploadStatus.CANCELLED
            transfer.finishing = False
            self._scheduler.emit(FileCancelled(transfer.id, path=transfer.path))
            self._scheduler.release(transfer)
        self._scheduler.admit()
