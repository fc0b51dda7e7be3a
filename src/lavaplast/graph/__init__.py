"""Builders that assemble lavaplast processes into runnable Lava graphs.

The builders are imported on first use, so that the Lava-free modules of
this package (``spec``, ``inputs``, the ``snntorch`` and ``torch`` backends)
load without Lava.
"""

import importlib

_BUILDERS = {
    "LavaBinaryMLP": "lavaplast.graph.binary_network",
    "LavaEPNetwork": "lavaplast.graph.ep_network",
    "LavaSpikingBinaryMLP": "lavaplast.graph.spiking",
    "LavaSpikingLearner": "lavaplast.graph.spiking_learner",
}

__all__ = ["LavaBinaryMLP", "LavaEPNetwork", "LavaSpikingBinaryMLP", "LavaSpikingLearner"]


def __getattr__(name):
    if name in _BUILDERS:
        return getattr(importlib.import_module(_BUILDERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
