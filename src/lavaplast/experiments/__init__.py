"""Experiment protocols: continual learning with metaplastic binary synapses."""

from lavaplast.experiments.config import PROTOCOLS, ContinualConfig
from lavaplast.experiments.continual import evaluate, run_continual

__all__ = ["PROTOCOLS", "ContinualConfig", "evaluate", "run_continual"]
