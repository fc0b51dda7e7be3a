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
:class:`lavaplast.reference.spiking.SpikingBinaryMLP`.
:class:`LavaSpikingBinaryMLP` is a thin layer over the graph specification:
it describes itself as a :class:`~lavaplast.graph.spec.GraphSpec`
(:func:`spiking_spec`), and the builder that runs graph files
(:func:`lavaplast.graph.backends.lava.chain_layers` and
:func:`~lavaplast.graph.backends.lava.simulate_chain`) runs it.
"""

from __future__ import annotations

import numpy as np

from lavaplast.core import check_finite_array, check_int, check_number, check_positive, per_layer
from lavaplast.reference.spiking import check_spiking_network


def spiking_spec(hidden_weights: list, *, beta=0.9, threshold=1.0, batch: int = 1, timeout: float = 120.0,
                 name: str = "spiking"):
    """The :class:`~lavaplast.graph.spec.GraphSpec` of a binary-synapse LIF chain: ``lif`` populations
    (``beta``, ``threshold``: one value or one per layer), binary connections holding ``hidden_weights``
    in memory, a ``spike_count`` readout of the last population and an external input."""
    from lavaplast.graph.spec import Connection, GraphSpec, InputSpec, Population, ReadoutSpec, RunSpec, \
        WeightsSpec, validate

    weights = check_spiking_network(hidden_weights, beta, threshold)
    L = len(weights)
    names = [f"layer{l + 1}" for l in range(L)]
    pops = tuple(Population(name=n, size=w.shape[0], neuron="lif",
                            params=dict(beta=float(b), threshold=float(th), reset="zero"))
                 for n, w, b, th in zip(names, weights, per_layer("beta", beta, L, check_number),
                                           per_layer("threshold", threshold, L, check_number)))
    conns = tuple(Connection(pre=(["input"] + names)[l], post=names[l], weights=WeightsSpec.from_array(w))
                  for l, w in enumerate(weights))
    spec = GraphSpec(name=name, input=InputSpec(size=weights[0].shape[1], source="external"), populations=pops,
                     connections=conns, readout=ReadoutSpec(population=names[-1], kind="spike_count"),
                     run=RunSpec(batch=batch, timeout=timeout), backends=("lava", "snntorch", "torch"))
    return validate(spec)


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
        # One value, or one per layer (as checked above).
        self.beta = beta if np.ndim(beta) == 0 else [float(b) for b in np.ravel(beta)]
        self.threshold = threshold if np.ndim(threshold) == 0 else [float(t) for t in np.ravel(threshold)]
        self.batch = check_int("batch", batch, 1)
        self.timeout = check_positive("timeout", timeout)
        self.sizes = [self.hidden_weights[0].shape[1]] + [w.shape[0] for w in self.hidden_weights]

    @property
    def n_layers(self) -> int:
        return len(self.hidden_weights)

    @property
    def spec(self):
        """The graph specification this network runs (see :func:`spiking_spec`)."""
        return spiking_spec(self.hidden_weights, beta=self.beta, threshold=self.threshold, batch=self.batch,
                            timeout=self.timeout)

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
        from lavaplast.graph.backends.lava import chain_layers, simulate_chain

        spikes = self._check_spikes(spikes)
        trains, _ = simulate_chain(chain_layers(self.spec), spikes, timeout=self.timeout)
        return trains, trains[-1].sum(0)

    def predict(self, spikes) -> np.ndarray:
        """Class predictions ``(batch,)``: the output neuron with the most spikes."""
        return self.run(spikes)[1].argmax(1)
