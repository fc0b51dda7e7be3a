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


def tqdm_class():
    """tqdm's bar class, set up not to touch ``multiprocessing``.

    tqdm's default write lock creates a multiprocessing lock, which fixes the
    process's start method; importing Lava afterwards (it sets the start
    method to ``fork`` itself) then fails with "context has already been
    set". A thread lock is all the bars of one process need.
    """
    import threading

    from tqdm.auto import tqdm

    if getattr(tqdm, "_lock", None) is None:
        tqdm.set_lock(threading.RLock())
    return tqdm


def progress_bar(iterable=None, enabled: bool = True, **kwargs):
    """``iterable`` wrapped in a tqdm bar (``leave=False``) when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    return tqdm_class()(iterable, leave=False, **kwargs)
