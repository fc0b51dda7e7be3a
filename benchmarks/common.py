"""What every benchmark records beside its numbers."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from lavaplast.outputs import write_json


def save(result: dict, path: str) -> Path:
    """Add the command and the machine to ``result`` and write it as JSON (atomically)."""
    result.update(
        command=" ".join(["python", *sys.argv]),
        cpus=os.cpu_count(),
        machine=platform.machine(),
        python=platform.python_version(),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    return out
