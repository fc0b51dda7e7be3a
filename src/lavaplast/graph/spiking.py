"""Spiking mode of binary networks: LIF neurons behind binary synapses, as a Lava graph.

::

    BatchSource --> BinaryDense_1 --> LIF_1 --> BinaryDense_2 --> LIF_2 --> ... --> LIF_L
                                        \\--> BatchSink_1          \\--> BatchSink_2       \\--> BatchSink_L

The source sends input time step ``k`` (0-based) at Lava step ``k + 1``.
Each ``BinaryDense`` delays by one step and each ``LIF`` spikes in the step it
receives, so at Lava step ``t`` layer 1 integrates input step ``t - 2`` and
layer ``l`` the spikes layer ``l - 1`` sent at step ``t - 1``. Sinks record
every LIF at every step, so row ``t - 1`` of a recording holds the spikes of
Lava step ``t``: the same indexing as the twin
:class:`lavaplast.reference.spiking.SpikingBinaryMLP`. The graph itself is
built by :func:`lavaplast.graph.backends.lava.simulate_chain`, which also
runs graph files.
"""

from __future__ import annotations

import numpy as np

from lavaplast.core import check_finite_array, check_int, check_positive
from lavaplast.reference.spiking import check_spiking_network


class LavaSpikingBinaryMLP:
    """Binary-synapse spiking MLP on Lava's CPU simulator (stock float ``LIF``, zero reset).

    ``hidden_weights`` are ``(n_out, n_in)`` matrices; the synapses use
    ``sign(W_h)``. Every layer has ``LIF(du=1, dv=1 - beta, vth=threshold)``:
    the synaptic current is the input of the step alone and the membrane
    decays by ``1 - dv`` (= ``beta``) per step. ``batch`` samples run side by
    side; ``timeout`` bounds each run, and the runtime is stopped on every
    exit path.
    """

    def __init__(self, hidden_weights: list, *, beta: float = 0.9, threshold: float = 1.0,
                 batch: int = 1, timeout: float = 120.0):
        self.hidden_weights = check_spiking_network(hidden_weights, beta, threshold)
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.batch = check_int("batch", batch, 1)
        self.timeout = check_positive("timeout", timeout)
        self.sizes = [self.hidden_weights[0].shape[1]] + [w.shape[0] for w in self.hidden_weights]

    @property
    def n_layers(self) -> int:
        return len(self.hidden_weights)

    def _check_spikes(self, spikes) -> np.ndarray:
        spikes = np.asarray(spikes, dtype=float)
        n_in = self.sizes[0]
        if spikes.ndim != 3 or spikes.shape[0] == 0 or spikes.shape[1:] != (self.batch, n_in):
            raise ValueError(f"spikes must have shape (T, {self.batch}, {n_in}) with T >= 1 "
                             f"(time steps, batch, inputs), got {spikes.shape}")
        return check_finite_array("spikes", spikes)

    def run(self, spikes) -> tuple[list[np.ndarray], np.ndarray]:
        """Present ``spikes`` ``(T, batch, n_in)`` (spikes or currents) for ``T`` steps.

        Runs ``T + n_layers`` steps, enough for the last input step to reach
        the output layer. Returns ``(trains, counts)``: one ``(T + n_layers,
        batch, n_l)`` spike recording per layer and the output spike counts
        ``(batch, n_out)``.
        """
        from lavaplast.graph.backends.lava import ChainLayer, simulate_chain

        spikes = self._check_spikes(spikes)
        layers = [ChainLayer(hidden=w, neuron="lif", beta=self.beta, threshold=self.threshold)
                  for w in self.hidden_weights]
        trains, _ = simulate_chain(layers, spikes, timeout=self.timeout)
        return trains, trains[-1].sum(0)

    def predict(self, spikes) -> np.ndarray:
        """Class predictions ``(batch,)``: the output neuron with the most spikes."""
        return self.run(spikes)[1].argmax(1)
