"""Engine errors: each under exactly one cause group, the translations of botocore's and the
`nuxeo` client's exceptions, and the command line showing any of them as one line."""

from __future__ import annotations

import inspect

import click
import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from click.testing import CliRunner
from nuxeo import exceptions as nx

import engine.errors as errors
from engine.errors import (
    CAUSES,
    BatchGone,
    ConflictError,
    CredentialsError,
    CredentialsExpired,
    IntegrityError,
    LocalFileError,
    NotFoundError,
    NuxeoNotFound,
    NxupError,
    RequestStillRunning,
    ServerError,
    ServerUnreachable,
    StateError,
    StorageError,
    StorageUnreachable,
    TransientError,
    UploadGone,
    translate_nuxeo_error,
    translate_s3_error,
)
from engine.existing import DocumentChanged, NameTaken
from engine.planning import FileTooLarge, plan_upload


def _concrete_errors() -> list[type[NxupError]]:
    groups = {NxupError, ServerError, StorageError, *CAUSES}
    found = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
             if issubclass(obj, NxupError) and obj not in groups]
    return [*found, FileTooLarge, NameTaken, DocumentChanged]


@pytest.mark.parametrize("error_class", _concrete_errors(), ids=lambda c: c.__name__)
def test_every_error_has_exactly_one_cause(error_class: type[NxupError]) -> None:
    causes = [cause for cause in CAUSES if issubclass(error_class, cause)]
    assert len(causes) == 1, f"{error_class.__name__} is under {causes}"


def _client_error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "UploadPart")


def test_s3_translations_say_the_cause() -> None:
    lost = translate_s3_error(EndpointConnectionError(endpoint_url="http://s3"), action="sending part 1")
    assert isinstance(lost, StorageUnreachable) and isinstance(lost, TransientError) and lost.retryable
    gone = translate_s3_error(_client_error("NoSuchUpload"), action="sending part 1")
    # Sending again cannot bring an upload back: the file recovers by a new round instead.
    assert isinstance(gone, UploadGone) and isinstance(gone, NotFoundError) and not gone.retryable
    expired = translate_s3_error(_client_error("ExpiredToken"), action="sending part 1")
    assert isinstance(expired, CredentialsExpired) and isinstance(expired, CredentialsError) and expired.retryable
    corrupt = translate_s3_error(_client_error("BadDigest", "digest"), action="sending part 1")
    assert isinstance(corrupt, IntegrityError) and corrupt.code == "BadDigest" and not corrupt.retryable
    assert "sending part 1" in str(corrupt)


def test_nuxeo_translations_say_the_cause() -> None:
    assert isinstance(translate_nuxeo_error(nx.Unauthorized(), action="x"), CredentialsError)
    running = translate_nuxeo_error(nx.OngoingRequestError("key-1"), action="creating the document")
    assert isinstance(running, RequestStillRunning) and isinstance(running, ConflictError) and running.retryable
    missing = translate_nuxeo_error(nx.HTTPError(status=404, message="no such document"), action="reading the folder")
    assert isinstance(missing, NuxeoNotFound) and isinstance(missing, NotFoundError)
    down = translate_nuxeo_error(requests.exceptions.ConnectionError("refused"), action="starting a batch")
    assert isinstance(down, ServerUnreachable) and isinstance(down, TransientError)
    assert isinstance(BatchGone("gone"), NotFoundError) and BatchGone("gone").retryable


def test_a_file_too_large_is_a_local_file_error() -> None:
    with pytest.raises(LocalFileError, match="larger than the 5 TiB"):
        plan_upload(5 * 1024**4 + 1)


@pytest.mark.parametrize("error", [
    StateError("/tmp/state.db: the state database cannot be written (disk full)"),
    FileTooLarge(6 * 1024**4),
    StorageUnreachable("lost the connection to S3 while sending part 3\nof 5"),
], ids=lambda e: type(e).__name__)
def test_the_command_line_shows_any_engine_error_in_one_line(error: NxupError) -> None:
    from cli.main import main

    @click.command("fails")
    def fails() -> None:
        raise error

    main.add_command(fails)
    try:
        result = CliRunner().invoke(main, ["fails"])
    finally:
        main.commands.pop("fails")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nxup: ")
