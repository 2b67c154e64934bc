"""The order of the file list: active files first.

Files uploading come first, then those queued or paused, then failed ones, then finished ones
(done or cancelled); within a group, in the order they were queued, so a row only moves when its
file changes group. Each group is a sorted list of arrival numbers: placing a file costs a
binary search and a list shift, and finding the file at a screen row costs a walk over the groups,
so the list stays cheap to keep with 10,000 files.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from engine.lifecycle import UploadStatus

GROUP_OF_STATUS: dict[UploadStatus, int] = {
    UploadStatus.UPLOADING: 0,
    UploadStatus.QUEUED: 1,
    UploadStatus.PAUSED: 1,
    UploadStatus.FAILED: 2,
}
FINISHED_GROUP = 3  # done, cancelled, and any state that asks nothing more of the user


def group_of(status: UploadStatus) -> int:
    return GROUP_OF_STATUS.get(status, FINISHED_GROUP)


class RowOrder:
    """File ids in display order, addressed by index."""

    def __init__(self) -> None:
        self._arrival: dict[int, int] = {}  # file id -> arrival number
        self._file_ids: list[int] = []  # arrival number -> file id
        self._group: dict[int, int] = {}  # file id -> group
        self._groups: list[list[int]] = [[] for _ in range(FINISHED_GROUP + 1)]  # sorted arrival numbers

    def __len__(self) -> int:
        return len(self._file_ids)

    def __contains__(self, file_id: int) -> bool:
        return file_id in self._arrival

    def place(self, file_id: int, status: UploadStatus) -> bool:
        """Add the file or move it to its status's group; True when the order changed."""
        group = group_of(status)
        arrival = self._arrival.get(file_id)
        if arrival is None:
            arrival = self._arrival[file_id] = len(self._file_ids)
            self._file_ids.append(file_id)
        else:
            old = self._group[file_id]
            if old == group:
                return False
            members = self._groups[old]
            del members[bisect_left(members, arrival)]
        self._group[file_id] = group
        insort(self._groups[group], arrival)
        return True

    def index(self, file_id: int) -> int | None:
        arrival = self._arrival.get(file_id)
        if arrival is None:
            return None
        group = self._group[file_id]
        before = sum(len(members) for members in self._groups[:group])
        return before + bisect_left(self._groups[group], arrival)

    def __getitem__(self, index: int) -> int:
        if index < 0:
            index += len(self)
        for members in self._groups:
            if index < len(members):
                return self._file_ids[members[index]]
            index -= len(members)
        raise IndexError(index)

    def in_finished_group(self, file_id: int) -> bool:
        return self._group.get(file_id) == FINISHED_GROUP
