"""The Nuxeo side of an upload, through the real `nuxeo` client.

Where the client's helpers misread a server, this module calls the same endpoints through the
client's own `request()` (same auth, retries and error mapping):
- `uploads.handlers()` keeps only the first handler of the list, so `s3` is missed when a
  server lists `default` first: the handler list is read here, every entry's `name`;
- `uploads.batch(handler="s3")` refuses `s3` for the same reason: the batch is created with
  `POST upload/new/s3` directly;
- `batch.complete()` needs the client's in-memory blob list, which a resumed upload does not
  have: `/complete` is posted with the same body the client would send.

No POST is retried blindly: the HTTP layer retries GET, PUT and DELETE only. The POSTs sent again
after a lost or transient answer are those whose repeat is harmless (a batch, credentials,
`/complete`). The document creation carries an `Idempotency-Key` (a Nuxeo server since 2021, or
10.10-HF40, runs it once and answers a repeat with the first answer), and the engine looks for
the document before it sends one again, for servers without that.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nuxeo.auth import TokenAuth
from nuxeo.client import Nuxeo
from nuxeo.exceptions import HTTPError
from nuxeo.models import Batch
from requests.exceptions import ChunkedEncodingError, RequestException
from urllib3.util.retry import Retry

from .credentials import BatchCredentials, CredentialSet
from .errors import (
    BatchGone,
    InputError,
    NuxeoNotFound,
    ServerUnsupported,
)
from .http_environment import read_environment_once
from .nuxeo_calls import nuxeo_call as _nuxeo_call
from .nuxeo_existing import ExistingDocuments
from .redaction import remember_login, remember_secret
from .s3 import S3Location

# The client logs whole responses at DEBUG, refreshToken answers (credentials) included.
logging.getLogger("nuxeo").setLevel(logging.WARNING)

S3_HANDLER = "s3"
APP_NAME = "nxup"
# Transient server errors are retried a few times, quickly: the client's default (5 retries over
# 30 s) makes an unreachable server look like a hang. Not POST: the server may have acted on a
# request whose answer was lost (connection errors before sending are retried for every method).
_RETRY = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(429, 500, 503, 504),
    allowed_methods=("GET", "PUT", "DELETE"),
    raise_on_status=False,
    respect_retry_after_header=False,
)
_REQUEST_TIMEOUT = (10, 300)
# `/complete` copies the object to its final place inside the request (minutes for a large
# file): as Nuxeo Drive, give the call and its server transaction six hours.
_COMPLETE_TIMEOUT_S = 6 * 3600
# The answers after which a repeatable POST is sent again (409 only under an Idempotency-Key:
# the first request with that key is still running).
_REPEATABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_POST_ATTEMPTS = 4
# GET, PUT and DELETE are sent again when their answer is cut mid-body.
_IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD"})
_BODY_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ServerConnection:
    url: str
    user: str
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        remember_login(self.user, self.password)
        remember_secret(self.token)

    @property
    def host(self) -> str:
        """The client's `host`: the Nuxeo base URL ending with a slash."""
        return self.url.rstrip("/") + "/"


@dataclass(frozen=True, slots=True)
class BatchInfo:
    batch_id: str
    provider: str
    location: S3Location
    base_key: str
    credentials: CredentialSet


@dataclass(frozen=True, slots=True)
class CreatedDocument:
    uid: str
    path: str
    blob_length: int | None  # None: the server made the document without its blob
    blob_digest: str | None
    blob_digest_algorithm: str | None = None
    version_label: str | None = None
    change_token: str | None = None


class NuxeoBatchClient(ExistingDocuments):
    """Batches, credentials, completion and documents for nxup, on one Nuxeo server. Its length:
    every call goes through the one session, its retries and its error translation, and the
    folders it learnt (the folders' calls are apart, in `NuxeoFolders`, and those of `--existing`
    in `ExistingDocuments`)."""

    def __init__(self, connection: ServerConnection) -> None:
        if urlsplit(connection.url).password is not None:
            # Stored and shown everywhere: the login travels apart from the URL.
            raise InputError("the server URL must not carry a password (give it in NUXEO_PASSWORD)")
        self.connection = connection
        if connection.token:
            auth: Any = TokenAuth(connection.token)
        else:
            auth = (connection.user, connection.password or "")
        self._nuxeo = Nuxeo(host=connection.host, auth=auth, app_name=APP_NAME, retries=_RETRY)
        read_environment_once(self._nuxeo.client._session, connection.host)
        self._folders: dict[str, str] = {}
        self._folder_types: dict[str, str] = {}  # by real path, as seen when looked up or made
        self._folder_lock = threading.Lock()
        self._s3_handler: str | None = None

    @property
    def nuxeo(self) -> Nuxeo:
        return self._nuxeo

    def close(self) -> None:
        """Close the HTTP connections to the server."""
        self._nuxeo.client.on_exit()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request, its answer read whole before returning: the client streams bodies, so
        an answer cut in its middle would otherwise fail later, outside every retry. Idempotent
        methods are sent again after such a cut."""
        kwargs.setdefault("timeout", _REQUEST_TIMEOUT)
        attempts = _BODY_ATTEMPTS if method in _IDEMPOTENT_METHODS else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._nuxeo.client.request(method, path, **kwargs)
                response.content  # noqa: B018 (read it all now)
                return response
            except ChunkedEncodingError:  # refusals to connect are urllib3's to retry
                if attempt == attempts:
                    raise
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def _post(self, path: str, *, key: str | None = None, headers: dict[str, str] | None = None,
              attempts: int = _POST_ATTEMPTS, **kwargs: Any) -> Any:
        """A POST that may be sent again when its answer is lost or transient: either one whose
        repeat is harmless by nature (a new batch, credentials, `/complete`), or one sent under
        `Idempotency-Key: key` (409: the first one with that key still runs on the server).
        Keys cost the server a stored answer each, so only the calls that need one carry one."""
        headers = dict(headers or {})
        if key is not None:
            headers["Idempotency-Key"] = key
        delay = 0.5
        for attempt in range(1, attempts + 1):
            try:
                return self._request("POST", path, headers=dict(headers), **kwargs)
            except HTTPError as exc:
                repeatable = exc.status in _REPEATABLE_STATUSES or (exc.status == 409 and key is not None)
                if not repeatable or attempt == attempts:
                    raise
            except RequestException:
                if attempt == attempts:
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    # -- session -------------------------------------------------------------------------
    @_nuxeo_call("logging in")
    def check_login(self) -> str:
        user = self._nuxeo.users.current_user()
        return str(user.uid or self.connection.user)

    def check_rest_api(self) -> None:
        """NuxeoNotFound naming the likely cause when the URL serves no Nuxeo REST API (the
        usual mistake: a URL without its `/nuxeo`)."""
        try:
            self.check_login()
        except NuxeoNotFound:
            hint = "" if urlsplit(self.connection.url).path.rstrip("/") else " (Nuxeo URLs usually end with /nuxeo)"
            raise NuxeoNotFound(f"it answers, but not as a Nuxeo server{hint}") from None

    @_nuxeo_call("reading the upload handlers")
    def handlers(self) -> list[str]:
        answer = self._request("GET", "api/v1/upload/handlers").json()
        return [str(entry.get("name", "")).lower() for entry in answer.get("handlers", [])]

    def s3_handler(self) -> str:
        """The name of the server's S3 direct upload handler: `s3` in the stock configuration,
        `s3direct` on some versions; read once (a server that offers S3 keeps offering it)."""
        if self._s3_handler is None:
            names = self.handlers()
            candidates = [S3_HANDLER] if S3_HANDLER in names else [n for n in names if "s3" in n]
            if not candidates:
                raise ServerUnsupported("the Nuxeo server offers no S3 direct upload (no S3 upload handler)")
            self._s3_handler = candidates[0]
        return self._s3_handler

    # -- batches ---------------------------------------------------------------------------
    @_nuxeo_call("creating an upload batch")
    def new_batch(self) -> BatchInfo:
        # An extra batch from a repeated POST is harmless: it is never used, and expires.
        answer = self._post(f"api/v1/upload/new/{self.s3_handler()}").json()
        return self._batch_info(answer)

    @staticmethod
    def _batch_info(answer: dict[str, Any]) -> BatchInfo:
        extra = answer.get("extraInfo") or {}
        batch = Batch(batchId=answer["batchId"], provider=answer.get("provider"), extraInfo=extra)
        # A handler registered under another name than `s3` says what it is by its answer's
        # shape (and `provider_type`, which the client's own `is_s3()` reads).
        if not (batch.is_s3() or ("bucket" in extra and "awsSecretKeyId" in extra)):
            raise ServerUnsupported("the Nuxeo server answered with a batch that is not an S3 batch")
        base_key = str(extra.get("baseKey") or "")
        if base_key and not base_key.endswith("/"):
            base_key += "/"
        return BatchInfo(
            batch_id=str(answer["batchId"]),
            provider=str(answer.get("provider")),
            location=S3Location.from_extra_info(extra),
            base_key=base_key,
            credentials=CredentialSet.from_nuxeo(extra),
        )

    def _batch_request(self, method: str, path: str, *, gone: str = "the upload batch expired on the server",
                       **kwargs: Any) -> Any:
        """A request about one batch: 404 means the server no longer has it."""
        try:
            return self._request(method, path, **kwargs)
        except HTTPError as exc:
            if exc.status == 404:
                raise BatchGone(gone) from exc
            raise

    @_nuxeo_call("reading an upload batch")
    def batch_info(self, batch_id: str) -> BatchInfo:
        """The batch's S3 details with fresh credentials; BatchGone if the server lost it."""
        return self._batch_info(self._batch_request("GET", f"api/v1/upload/{batch_id}/info").json())

    def batch_credentials(self, batch: BatchInfo) -> BatchCredentials:
        """The batch's S3 credentials, refreshed through this server before they expire."""
        batch_id = batch.batch_id
        return BatchCredentials.create(batch.credentials, refresh=lambda: self.refresh_credentials(batch_id))

    @_nuxeo_call("refreshing the S3 credentials")
    def refresh_credentials(self, batch_id: str) -> CredentialSet:
        try:
            answer = self._post(f"api/v1/upload/{batch_id}/refreshToken")
        except HTTPError as exc:
            if exc.status == 404:
                raise BatchGone("the upload batch expired on the server") from exc
            if exc.status not in (400, 501):
                raise
            # No refreshToken (before 10.10-HF27 / 11.1: 400; a handler without it: 501). The
            # batch's own description carries credentials minted for the request.
            return self.batch_info(batch_id).credentials
        return CredentialSet.from_nuxeo(answer.json())

    @_nuxeo_call("completing the upload on Nuxeo")
    def complete(
        self, batch_id: str, *, name: str, size: int, key: str, bucket: str, etag: str,
        mime_type: str | None = None, file_idx: int = 0,
    ) -> None:
        """Register the object `key` as file `file_idx` of the batch. The server checks the
        object with its own rights (a missing one answers 500) and copies it in the request.
        Sending it again only registers the same object again."""
        body: dict[str, Any] = {"name": name, "fileSize": size, "key": key, "bucket": bucket, "etag": etag}
        if mime_type:
            body["mimeType"] = mime_type
        try:
            self._post(
                f"api/v1/upload/{batch_id}/{file_idx}/complete", data=body,
                headers={"Nuxeo-Transaction-Timeout": str(_COMPLETE_TIMEOUT_S)},
                timeout=(10, _COMPLETE_TIMEOUT_S),
            )
        except HTTPError as exc:
            if exc.status == 404:
                raise BatchGone("the upload batch expired on the server before completion") from exc
            raise

    @_nuxeo_call("reading an upload batch")
    def registered_size(self, batch_id: str, file_idx: int = 0) -> int | None:
        """The size of the object registered as file `file_idx` of the batch, per the server."""
        answer = self._batch_request("GET", f"api/v1/upload/{batch_id}/{file_idx}").json()
        size = answer.get("size") if isinstance(answer, dict) else None
        return int(size) if size is not None else None

    def _delete(self, path: str) -> None:
        """DELETE `path`; already gone is as good."""
        try:
            self._request("DELETE", path)
        except HTTPError as exc:
            if exc.status != 404:
                raise

    @_nuxeo_call("dropping the upload batch")
    def drop(self, batch_id: str) -> None:
        self._delete(f"api/v1/upload/{batch_id}")

    # -- documents -------------------------------------------------------------------------
    @_nuxeo_call("creating the document")
    def create_file_document(self, parent: str, *, name: str, batch_id: str, key: str,
                             file_idx: int = 0) -> CreatedDocument:
        """A File document named after the file, holding the batch's blob. `key` is the
        creation's Idempotency-Key: the same key again gets the same document, not a second.
        A server whose batch is gone makes the document without the blob (and answers 201):
        the caller must check `blob_length`. The batch is kept (`X-Batch-No-Drop`): other
        files may share it, and the caller drops it when none is left."""
        body = {
            "entity-type": "document",
            "name": name,
            "type": "File",
            "properties": {
                "dc:title": name,
                "file:content": {"upload-batch": batch_id, "upload-fileId": str(file_idx)},
            },
        }
        try:
            answer = self._post(f"api/v1/path{self._doc_path(self.resolve_folder(parent))}", key=key,
                                headers={"X-Batch-No-Drop": "true"}, data=body, attempts=1).json()
        except HTTPError as exc:
            if exc.status == 404:
                raise NuxeoNotFound(f"the target folder {parent} does not exist on Nuxeo") from exc
            raise
        return self._created(answer)

    @_nuxeo_call("looking for the document in the target folder")
    def find_file_documents(self, parent: str, *, name: str) -> list[CreatedDocument]:
        """The documents titled `name` in folder `parent` (every page of its children)."""
        found: list[CreatedDocument] = []
        path = f"api/v1/path{self._doc_path(self.resolve_folder(parent))}/@children"
        page = 0
        while True:
            answer = self._request("GET", path, params={"pageSize": 1000, "currentPageIndex": page},
                                   headers={"X-NXDocumentProperties": "dublincore,file"}).json()
            for entry in answer.get("entries") or []:
                if (entry.get("title") or (entry.get("properties") or {}).get("dc:title")) == name:
                    found.append(self._created(entry))
            if not answer.get("isNextPageAvailable"):
                return found
            page += 1

    @staticmethod
    def _created(answer: dict[str, Any]) -> CreatedDocument:
        blob = (answer.get("properties") or {}).get("file:content")
        length = digest = algorithm = None
        if isinstance(blob, dict) and blob.get("length") is not None:
            length = int(blob["length"])
            digest = str(blob["digest"]) if blob.get("digest") else None
            algorithm = str(blob["digestAlgorithm"]) if blob.get("digestAlgorithm") else None
        return CreatedDocument(uid=str(answer["uid"]), path=str(answer.get("path") or ""),
                               blob_length=length, blob_digest=digest, blob_digest_algorithm=algorithm,
                               version_label=answer.get("versionLabel"), change_token=answer.get("changeToken"))

    @_nuxeo_call("removing a document made without its file")
    def delete_document(self, uid: str) -> None:
        self._delete(f"api/v1/id/{uid}")

