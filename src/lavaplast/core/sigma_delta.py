"""Sigma-delta coding of graded values as events, written once.

A sender keeps the value it last communicated; it sends an event carrying
the difference wherever the value has drifted from it by more than
``threshold``. A receiver adds the events up to reconstruct the value. With
``threshold = 0`` every change is sent and the reconstruction is exact.
"""

from __future__ import annotations

from array_api_compat import array_namespace


def sigma_delta_encode(value, sent, threshold: float):
    """``(events, new_sent)``: the events to send and the sender's new record."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    xp = array_namespace(value)
    delta = value - sent
    events = xp.where(xp.abs(delta) > threshold, delta, xp.zeros_like(delta))
    return events, sent + events
