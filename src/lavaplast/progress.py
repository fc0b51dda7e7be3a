"""Whether to draw progress bars.

A progress bar redraws itself with carriage returns; on a terminal that is
one line, but in a log file (batch schedulers, ``docker logs``, ``> log``)
every redraw becomes a line of its own. Bars are therefore drawn only when
stderr, where tqdm writes them, is a terminal, unless forced.
"""

from __future__ import annotations

import sys
from typing import Optional


def show_progress(progress: Optional[bool] = None, stream=None) -> bool:
    """``True``/``False`` force bars on/off; ``None`` draws them only if ``stream`` (default stderr) is a TTY."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable, enabled: bool, **kwargs):
    """``iterable`` wrapped in a tqdm bar (``leave=False``) when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, **kwargs)
