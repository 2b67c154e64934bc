"""The sandbox's NXQL search, versions and trash, driven by the real `nuxeo` client as a real
Nuxeo server answers it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import new_file_doc, new_folder, uploaded_batch, write_file
from nuxeo.client import Nuxeo
from nuxeo.exceptions import HTTPError


def _children_query(uid: str) -> str:
    return f"SELECT * FROM Document WHERE ecm:parentId = '{uid}' AND ecm:isTrashed = 0"


def test_query_pages_through_a_folders_live_children(nuxeo: Nuxeo) -> None:
    folder = new_folder(nuxeo)
    titles = [f"doc {i}" for i in range(5)]
    for title in titles:
        new_file_doc(nuxeo, folder, title)
    seen: list[str] = []
    for page in range(3):
        answer = nuxeo.documents.query({"query": _children_query(folder.uid), "pageSize": 2,
                                        "currentPageIndex": page})
        assert answer["resultsCount"] == 5 and answer["numberOfPages"] == 3
        assert answer["isNextPageAvailable"] is (page < 2)
        seen += [doc.title for doc in answer["entries"]]
    assert seen == titles


def test_query_filters_on_the_title_and_leaves_the_trashed_out(nuxeo: Nuxeo) -> None:
    folder = new_folder(nuxeo)
    kept = new_file_doc(nuxeo, folder, "a.txt")
    trashed = new_file_doc(nuxeo, folder, "b.txt")
    answer = nuxeo.client.request("POST", f"api/v1/id/{trashed.uid}/@op/Document.Trash", data={}).json()
    assert answer["isTrashed"] is True
    assert answer["path"] != trashed.path  # its name is free again
    live = nuxeo.documents.query({"query": _children_query(folder.uid)})
    assert [doc.uid for doc in live["entries"]] == [kept.uid]
    titled = nuxeo.documents.query({"query": f"SELECT * FROM File WHERE ecm:parentId = '{folder.uid}'"
                                             " AND dc:title = 'b.txt' AND ecm:isTrashed = 1"})
    assert [doc.uid for doc in titled["entries"]] == [trashed.uid]
    children = nuxeo.client.request("GET", f"api/v1/id/{folder.uid}/@children").json()
    assert [entry["uid"] for entry in children["entries"]] == [kept.uid]


def test_query_the_sandbox_cannot_run_is_a_400(nuxeo: Nuxeo) -> None:
    with pytest.raises(HTTPError) as raised:
        nuxeo.documents.query({"query": "SELECT dc:title FROM Document WHERE ecm:fulltext = 'x'"})
    assert raised.value.status == 400


def test_update_with_the_versioning_option_checks_in_the_next_version(nuxeo: Nuxeo, tmp_path: Path) -> None:
    folder = new_folder(nuxeo)
    doc = new_file_doc(nuxeo, folder, "a.txt")
    assert nuxeo.documents.get(uid=doc.uid).versionLabel == "0.0"
    labels = []
    for size in (10, 20):
        path = write_file(tmp_path, f"v{size}", size)
        batch = uploaded_batch(nuxeo, path)
        body = {"entity-type": "document",
                "properties": {"file:content": {"upload-batch": batch.uid, "upload-fileId": "0"}}}
        answer = nuxeo.client.request("PUT", f"api/v1/id/{doc.uid}", data=body,
                                      headers={"X-Versioning-Option": "MINOR"}).json()
        labels.append(answer["versionLabel"])
        assert answer["isCheckedOut"] is False
        blob = answer["properties"]["file:content"]
        assert blob["digest"] == hashlib.md5(path.read_bytes()).hexdigest() and blob["length"] == str(size)
    assert labels == ["0.1", "0.2"]
    answer = nuxeo.client.request("PUT", f"api/v1/id/{doc.uid}", data={"properties": {"dc:description": "x"}}).json()
    assert answer["versionLabel"] == "0.2+"
    assert answer["properties"]["uid:minor_version"] == 2
    assert not any(name.startswith("ecm:") for name in answer["properties"])
