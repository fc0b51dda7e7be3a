"""Sigma-delta coding of graded values as events, written once.

A sender keeps the value it last communicated; it sends an event carrying
the difference wherever the value has drifted from it by more than
``threshold``. A receiver adds the events up to reconstruct the value. With
``threshold = 0`` every change is sent and the reconstruction is exact.
"""

from __future__ import annotations

from array_api_compat import array_namespace

from lavaplast.core.validate import check_nonnegative


def sigma_delta_encode(value, sent, threshold: float):
    """``(events, new_sent)``: the events to send and the sender's new record."""
    threshold = check_nonnegative("threshold", threshold)
    xp = array_namespace(value)
    delta = value - sent
    events = xp.where(xp.abs(delta) > threshold, delta, xp.zeros_like(delta))
    return events, sent + events
