"""The fault proxy does what the reliability tests count on: each fault reaches the server or
not as its name says, and the connection is kept alive or dropped accordingly. Checked with a
folder creation on the sandbox's Nuxeo server: whether the folder exists says whether the
server acted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from conftest import WORKSPACES
from faultproxy import Fault, FaultKind, FaultProxy, Flavor, ScriptedFaults
from nuxeo.client import Nuxeo

from sandbox import Sandbox


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[FaultProxy]:
    with FaultProxy(f"127.0.0.1:{sandbox.nuxeo.port}", flavor=Flavor.NUXEO) as running:
        yield running


def create_folder(session: requests.Session, proxy: FaultProxy, name: str) -> requests.Response:
    return session.post(
        f"{proxy.url}/nuxeo/api/v1/path{WORKSPACES}",
        json={"entity-type": "document", "name": name, "type": "Folder", "properties": {"dc:title": name}},
        timeout=30,
    )


def folder_exists(nuxeo: Nuxeo, name: str) -> bool:
    return any(child.path == f"{WORKSPACES}/{name}" for child in nuxeo.documents.get_children(path=WORKSPACES))


# (fault, whether the server acts, whether the client gets a whole answer)
CASES = {
    "reset_request": (Fault(FaultKind.RESET_REQUEST), False, False),
    "reset_response": (Fault(FaultKind.RESET_RESPONSE), True, False),
    "lose_reply": (Fault(FaultKind.LOSE_REPLY), True, False),
    "error_500": (Fault(FaultKind.ERROR_500), False, True),
    "error_503": (Fault(FaultKind.ERROR_503), False, True),
    "stall": (Fault(FaultKind.STALL, seconds=0.2), True, True),
    "latency": (Fault(FaultKind.LATENCY, seconds=0.2), True, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_fault_acts_as_named(sandbox: Sandbox, proxy: FaultProxy, nuxeo: Nuxeo, case: str) -> None:
    fault, server_acts, answered = CASES[case]
    proxy.policy = ScriptedFaults([(lambda head: head.method == "POST", fault)])
    name = f"p-{uuid.uuid4().hex[:10]}"
    with requests.Session() as session:
        session.auth = (sandbox.info.user, sandbox.password)
        try:
            answer = create_folder(session, proxy, name)
            answer.json()  # the body is read in full, or the cut shows here
        except requests.RequestException:
            answer = None
        if answered:
            assert answer is not None
            assert answer.status_code == (201 if server_acts else int(case[-3:]))
            assert answer.headers["Content-Type"].startswith("application/json")
        else:
            assert answer is None
        assert folder_exists(nuxeo, name) is server_acts
        # The next request goes through untouched, on a new connection where the fault dropped one.
        assert create_folder(session, proxy, f"{name}-after").status_code == 201
    assert proxy.counts == {fault.kind: 1}
    assert proxy.requests == 2


def test_s3_errors_are_worded_as_s3(sandbox: Sandbox) -> None:
    policy = ScriptedFaults([(lambda head: True, Fault(FaultKind.ERROR_503))])
    with FaultProxy(sandbox.s3.endpoint.removeprefix("http://"), flavor=Flavor.S3, policy=policy) as proxy:
        answer = requests.get(f"{proxy.url}/{sandbox.info.bucket}?list-type=2", timeout=30)
    assert answer.status_code == 503
    assert "<Code>SlowDown</Code>" in answer.text


def test_keep_alive_connections_carry_many_requests(sandbox: Sandbox, proxy: FaultProxy) -> None:
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(f"{proxy.url}/nuxeo/runningstatus", timeout=30).text == "Ok"
    assert proxy.requests == 5
    assert proxy.connections_served == 1
