"""Where datasets live on disk."""

from __future__ import annotations

import os
import pathlib

ENV_VAR = "LAVAPLAST_DATA"
DEFAULT_DIR = "~/.cache/lavaplast"


def data_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Return the root data folder.

    Resolution order: ``path`` if given, else the ``LAVAPLAST_DATA``
    environment variable (if non-empty), else ``~/.cache/lavaplast``.
    The folder is not created.
    """
    if path is None:
        path = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return pathlib.Path(path).expanduser()


def dataset_dir(name: str, path: str | os.PathLike | None = None) -> pathlib.Path:
    """Return the folder holding the IDX files of dataset ``name``."""
    from .registry import canonical_name

    return data_dir(path) / canonical_name(name)


def locate_file(folder: str | os.PathLike, stem: str) -> pathlib.Path | None:
    """Return ``folder/stem`` if it exists, else its ``.gz`` twin, else ``None``."""
    for candidate in (pathlib.Path(folder) / stem, pathlib.Path(folder) / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None
