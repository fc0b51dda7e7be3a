"""Shared test fixtures."""

import os
import time

import pytest


def _shm_entries() -> set:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.fixture
def no_lava_leftovers():
    """Fail the test if it leaves Lava child processes or shared memory behind.

    Child processes that existed before the test are not blamed. Processes
    and segments still being torn down (a process that is exiting, a
    manager unlinking its blocks) get a few seconds to go before the check
    fails.
    """
    from lavaplast.proc import lava_children

    procs_before = {p.pid for p in lava_children()}
    shm_before = _shm_entries()
    yield
    give_up = time.monotonic() + 5.0
    while True:
        left = [p for p in lava_children() if p.pid not in procs_before]
        new = _shm_entries() - shm_before
        if (not left and not new) or time.monotonic() > give_up:
            break
        time.sleep(0.1)
    assert not left, f"Lava child processes left behind: {[p.pid for p in left]}"
    assert not new, f"shared-memory segments left behind: {sorted(new)}"


@pytest.fixture
def cli_fails(capsys):
    """``cli_fails(argv, *needles)``: the ``lavaplast`` command exits with 2 after exactly one
    ``lavaplast: error: ...`` line that holds every needle."""
    from lavaplast.cli import main

    def check(argv, *needles):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lavaplast: error: "), err
        for needle in needles:
            assert needle in lines[0], lines[0]

    return check


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the rule registry, so a test's rules do not leak into other tests (their names
    would otherwise appear in the messages that list the registered rules)."""
    from lavaplast.core import rules as rules_module

    monkeypatch.setattr(rules_module, "_REGISTRY", dict(rules_module._REGISTRY))
