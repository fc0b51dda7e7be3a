"""What every benchmark records beside its numbers."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def save(result: dict, path: str) -> Path:
    """Add the command and the machine to ``result`` and write it as JSON."""
    result.update(
        command=" ".join(["python", *sys.argv]),
        cpus=os.cpu_count(),
        machine=platform.machine(),
        python=platform.python_version(),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return out
