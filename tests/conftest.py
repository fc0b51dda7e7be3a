"""Shared test fixtures."""

import os

import pytest


@pytest.fixture
def no_lava_leftovers():
    """Fail the test if it leaves Lava child processes or shared memory behind."""
    from lavaplast.proc import lava_children

    shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    yield
    left = lava_children()
    assert not left, f"Lava child processes left behind: {[p.pid for p in left]}"
    if os.path.isdir("/dev/shm"):
        new = set(os.listdir("/dev/shm")) - shm_before
        assert not new, f"shared-memory segments left behind: {sorted(new)}"
