"""Lava processes of lavaplast (one folder per process: process.py + models.py).

Importing this package imports Lava; the rest of lavaplast works without it.
"""

from lavaplast.proc.batch_io.process import BatchSink, BatchSource
from lavaplast.proc.binary_dense.process import BinaryDense
from lavaplast.proc.ep_neuron.process import EPNeuron
from lavaplast.proc.ep_synapse.process import EPSynapse
from lavaplast.proc.error_neuron.process import ErrorNeuron
from lavaplast.proc.runtime import (
    LavaModelError,
    LavaSession,
    LavaTimeoutError,
    SharedArray,
    lava_children,
    run_in_chunks,
    sim_config,
)
from lavaplast.proc.sign_neuron.process import SignNeuron, fold_batchnorm

__all__ = [
    "BatchSink",
    "BatchSource",
    "BinaryDense",
    "EPNeuron",
    "EPSynapse",
    "ErrorNeuron",
    "LavaModelError",
    "LavaSession",
    "LavaTimeoutError",
    "SharedArray",
    "SignNeuron",
    "fold_batchnorm",
    "lava_children",
    "run_in_chunks",
    "sim_config",
]
