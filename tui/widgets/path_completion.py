"""Path completion for the add dialog: a dropdown of the entries that complete the last part of
the path (↓ ↑ to choose, tab or enter to take one), and the first of them shown ahead of the
cursor (→ takes it).

The dropdown is textual-autocomplete's: Textual's own Input offers one suggestion only. Both read
the same candidates, so the suggestion is the dropdown's first entry: the entries of the folder
typed so far whose names start with the last part, folders marked with a trailing /, hidden ones
only once a dot is typed. Names that would have to be shown escaped are left out (they cannot be
typed either).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.cache import LRUCache
from textual.content import Content
from textual.suggester import Suggester
from textual.widgets import Input
from textual_autocomplete import AutoComplete, DropdownItem, TargetState

from engine.text import printable

MAX_CANDIDATES = 200  # a folder of 10,000 files still answers at once


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool

    @property
    def completion(self) -> str:
        return self.name + (os.sep if self.is_dir else "")


class FolderReader:
    """The entries of folders, read once per folder while the dialog is open."""

    def __init__(self) -> None:
        self._cache: LRUCache[str, list[Entry]] = LRUCache(64)

    def entries(self, directory: str) -> list[Entry]:
        cached = self._cache.get(directory)
        if cached is not None:
            return cached
        try:
            with os.scandir(directory) as scan:
                found = [Entry(e.name, _is_dir(e)) for e in scan if printable(e.name) == e.name]
        except OSError:
            found = []
        found.sort(key=lambda entry: entry.name)
        self._cache[directory] = found
        return found

    def candidates(self, typed: str) -> list[Entry]:
        """Entries that complete the last part of `typed` (a path, `~` allowed), in name order."""
        directory, prefix = os.path.split(os.path.expanduser(typed))
        show_hidden = prefix.startswith(".")
        found = [
            entry for entry in self.entries(directory or ".")
            if entry.name.startswith(prefix) and entry.name != prefix
            and (show_hidden or not entry.name.startswith("."))
        ]
        return found[:MAX_CANDIDATES]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


class PathSuggester(Suggester):
    """The first candidate, shown ahead of the cursor (→ accepts it)."""

    def __init__(self, reader: FolderReader) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.reader = reader

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        candidates = self.reader.candidates(value)
        if not candidates:
            return None
        last_part = os.path.basename(value)
        return value + candidates[0].completion[len(last_part):]


class PathDropdown(AutoComplete):
    """Every candidate, under the cursor of the path field."""

    def __init__(self, target: Input, reader: FolderReader) -> None:
        super().__init__(target)
        self.reader = reader

    def get_candidates(self, target_state: TargetState) -> list[DropdownItem]:
        typed = target_state.text[: target_state.cursor_position]
        return [DropdownItem(entry.completion) for entry in self.reader.candidates(typed)] if typed else []

    def get_search_string(self, target_state: TargetState) -> str:
        return os.path.basename(target_state.text[: target_state.cursor_position])

    def match(self, query: str, candidate: str) -> tuple[float, tuple[int, ...]]:
        # The candidates all start with the query already: keep their name order.
        return 1.0, tuple(range(len(query)))

    def apply_highlights(self, candidate: Content, offsets: tuple[int, ...]) -> Content:
        return candidate.stylize("bold", 0, len(offsets)) if offsets else candidate

    def apply_completion(self, value: str, state: TargetState) -> None:
        """Replace the last part of the path (before the cursor) with the chosen entry."""
        before = state.text[: state.cursor_position]
        head = before[: before.rfind(os.sep) + 1]
        with self.prevent(Input.Changed):
            self.target.value = head + value + state.text[state.cursor_position:]
            self.target.cursor_position = len(head + value)
        if value.endswith(os.sep):  # a folder: show what is in it
            self._handle_target_update()

    def post_completion(self) -> None:
        if not self.target.value.endswith(os.sep):
            self.action_hide()

    def should_show_dropdown(self, search_string: str) -> bool:
        count = self.option_list.option_count
        typed = self.target.value[: self.target.cursor_position]
        return count > 1 or (count == 1 and bool(typed))
