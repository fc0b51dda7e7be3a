"""Backends that run a :class:`~lavaplast.graph.spec.GraphSpec`: ``lava``, ``snntorch`` and ``torch``.

Each backend module has ``run(spec, inputs, progress=False) -> GraphRun``
and builds what it runs from the specification alone. :func:`run_graph`
checks that the graph declares the backend and dispatches.
"""

from __future__ import annotations

import importlib

from lavaplast.graph.backends.base import GraphRun, unsupported
from lavaplast.graph.inputs import GraphInput
from lavaplast.graph.spec import BACKENDS, GraphSpec

__all__ = ["BACKENDS", "GraphRun", "check_backend", "run_graph"]


def check_backend(spec: GraphSpec, backend: str = None) -> str:
    """``backend`` (default: the first the graph declares) if the graph declares it; a ``ValueError``
    naming the field otherwise."""
    backend = spec.backends[0] if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend not in spec.backends:
        raise unsupported(spec, "backends", f"this graph declares {', '.join(spec.backends)}, not {backend!r}")
    return backend


def run_graph(spec: GraphSpec, inputs: GraphInput, backend: str = None, *, progress: bool = False) -> GraphRun:
    """Run ``spec`` on ``inputs`` with ``backend`` (default: the first the graph declares),
    checked by :func:`check_backend`."""
    backend = check_backend(spec, backend)
    module = importlib.import_module(f"lavaplast.graph.backends.{backend}")
    return module.run(spec, inputs, progress=progress)
