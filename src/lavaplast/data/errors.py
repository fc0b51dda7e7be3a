"""Exceptions raised when dataset files are missing or damaged."""

from __future__ import annotations

import os

FETCH_HINT = (
    "To fix it run `lavaplast data fetch` (or `make data`); "
    "to use data stored elsewhere pass `--data-dir DIR` or set LAVAPLAST_DATA=DIR."
)


def _message(problem: str, folder, filename, hint: str) -> str:
    return f"{problem}: file {filename!r} in folder {os.fspath(folder)!r}. {hint}"


class DataMissingError(FileNotFoundError):
    """A dataset file is absent. The message names folder, file and fix."""

    def __init__(
        self, folder, filename: str, hint: str = FETCH_HINT, problem: str = "dataset file is missing"
    ):
        self.folder = os.fspath(folder)
        self.filename = filename
        super().__init__(_message(problem, folder, filename, hint))

    def __str__(self) -> str:
        # OSError formats itself from errno/strerror; keep the plain message.
        return self.args[0]


class DataCorruptError(RuntimeError):
    """A dataset file exists but fails verification (checksum or format)."""

    def __init__(self, folder, filename: str, detail: str = "", hint: str = FETCH_HINT):
        self.folder = os.fspath(folder)
        self.filename = filename
        problem = "dataset file is corrupt" + (f" ({detail})" if detail else "")
        super().__init__(_message(problem, folder, filename, hint))
