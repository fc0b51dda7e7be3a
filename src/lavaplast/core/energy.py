"""Operation counts of a network and their conversion to energy on three kinds of substrate.

Backend-free: plain Python numbers, no Lava or torch. A network is described by its layer sizes
``n_0, n_1, ..., n_L`` (``n_0`` the input) and, for event-driven modes, by
the messages each population was measured to send. Every count is per
sample (one inference, or one training sample) and is an :class:`OpCounts`:

- ``synops``: synaptic operations: multiply-accumulates of a dense layer, or
  synaptic events (one message delivered to one postsynaptic neuron);
- ``messages``: messages sent between processes (spikes, events, or dense
  values, the input's included);
- ``bits``: the payload those messages carry (:data:`SPIKE_BITS` for a
  spike or a sign, :data:`VALUE_BITS` for a graded value);
- ``neuron_updates``: neuron state updates (one per neuron per time step);
- ``weight_reads``: reads of a synaptic weight (one per synaptic operation);
- ``state_reads``, ``state_writes``: reads and writes of the state a learning
  update touches (hidden weight and optimizer moments, :data:`STATE_WORDS`);
- ``synapse_updates``: synapses moved by a learning rule;
- ``learning_macs``: multiply-accumulates that compute the updates (outer
  products of errors and inputs, EP's contrasts, feedback projections);
- ``update_ops``: arithmetic of the optimizer per update
  (:data:`OPS_PER_UPDATE`).

The closed forms (:func:`dense_pass`, :func:`dense_training`,
:func:`ep_dense`, :func:`ep_dense_training`, :func:`event_forward`,
:func:`ep_events`, :func:`local_learning`) fix how each mode is counted;
:func:`energy` turns counts into picojoules for a substrate with the
constants of :data:`DEFAULT_CONSTANTS` (each with its published source),
any of which :func:`resolve_constants` overrides.

Counts assume one sample at a time (batch 1), the way a neuromorphic or
in-memory chip learns online; the GPU/CPU conversion divides the traffic and
arithmetic shared by a batch (weight reads, optimizer updates) by the
constant ``gpu_batch``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

SPIKE_BITS = 1
VALUE_BITS = 32

# Optimizer arithmetic per synapse update, counted as multiply-accumulates:
# Adam updates m, v, forms the step and (metaplastic) scales it by f_meta;
# SGD forms one scaled step. An accounting convention, not a measurement.
OPS_PER_UPDATE = {"adam": 4, "sgd": 1}
# Words of synaptic state read and written by one update: hidden weight, m, v (Adam); the weight (SGD).
STATE_WORDS = {"adam": 3, "sgd": 1}

SUBSTRATES = ("gpu", "loihi", "rram")


@dataclass(frozen=True)
class EnergyConstant:
    """One per-operation constant: ``value`` in ``unit``, what it prices, its ``source`` and how far the
    figure was checked against it (``check``); ``low`` is the smallest value accepted."""

    value: float
    unit: str
    what: str
    source: str
    check: str
    low: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_LOIHI = ("Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', IEEE Micro 38(1):82-99, "
          "2018, table of core energy and latency (pre-silicon SDF/SPICE simulation, 0.75 V; the brief cites it as "
          "Table 1, secondary sources as Table 2)")
_LOIHI_CHECK = ("figure agrees in two independent secondary quotations of the table; the primary PDF was not "
                "opened here")
_HOROWITZ = ("Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V "
             "energy table")
_HOROWITZ_CHECK = "checked against a published reproduction of the table (PMC8934428, Table 3)"
_RRAM = ("2T2R HfO2 arrays with precharge sense amplifiers: Hirtzlin et al., Frontiers in Neuroscience 13:1383, "
         "2020; Bocquet et al., IEDM 2018; Laborieux et al., IEEE TCAS-I 2021")
_RRAM_CHECK = ("NOT VERIFIED: the energy figures of these papers could not be read here; this is an "
               "order-of-magnitude placeholder. Override it with --constant")
_RRAM_SENSE = ("Kingra et al., arXiv 2208.02651 (2022), abstract: 17 fJ per XOR operation in a 2T-2R RRAM bitcell, "
               "SPICE simulation with the SkyWater 130 nm PDK")
_RRAM_SENSE_CHECK = ("read in the paper's abstract; a neighbouring circuit (XOR in the bitcell, no precharge sense "
                     "amplifier), so an estimate of the order, not a measurement of the 2T2R/PCSA arrays above")

DEFAULT_CONSTANTS: dict = {
    # Loihi-class digital neuromorphic core.
    "loihi_synop_pj": EnergyConstant(23.6, "pJ per synaptic operation", "energy per synaptic spike op (min)",
                                     _LOIHI, _LOIHI_CHECK),
    "loihi_synupdate_pj": EnergyConstant(120.0, "pJ per synapse update", "synaptic update (pairwise STDP); "
                                         "a lower bound for richer rules", _LOIHI, _LOIHI_CHECK),
    "loihi_neuron_update_pj": EnergyConstant(81.0, "pJ per neuron update", "neuron update, active (52 pJ "
                                             "inactive)", _LOIHI, _LOIHI_CHECK),
    "loihi_spike_pj": EnergyConstant(1.7, "pJ per message", "within-tile spike energy", _LOIHI, _LOIHI_CHECK),
    "loihi_hop_pj": EnergyConstant(3.0, "pJ per tile hop", "energy per tile hop, east-west (4.0 pJ "
                                   "north-south)", _LOIHI, _LOIHI_CHECK),
    "loihi_hops_per_message": EnergyConstant(1.0, "tile hops per message", "tile hops between a population "
                                             "and the next (placement-dependent)",
                                             "assumption of this account: one population per core, "
                                             "neighbouring tiles", "assumption, not a published figure"),
    # GPU/CPU, 32-bit floating point.
    "gpu_fp32_mult_pj": EnergyConstant(3.7, "pJ per operation", "32-bit float multiply", _HOROWITZ,
                                       _HOROWITZ_CHECK),
    "gpu_fp32_add_pj": EnergyConstant(0.9, "pJ per operation", "32-bit float add", _HOROWITZ, _HOROWITZ_CHECK),
    "gpu_sram_32b_pj": EnergyConstant(5.0, "pJ per 32-bit word", "cache access: half the 10 pJ of a 64-bit "
                                      "read of an 8 kB SRAM", _HOROWITZ, _HOROWITZ_CHECK),
    "gpu_dram_32b_pj": EnergyConstant(640.0, "pJ per 32-bit word", "DRAM access (1.3-2.6 nJ per 64-bit access "
                                      "in the ISSCC table)", _HOROWITZ + "; per 32-bit word as tabulated by Han "
                                      "et al., 'Learning both Weights and Connections for Efficient Neural "
                                      "Networks', NeurIPS 2015, Fig. 1",
                                      "checked against two reproductions of Han et al.'s table"),
    "gpu_batch": EnergyConstant(1.0, "samples", "samples sharing one read of the weights and one optimizer "
                                "update (batch 1: online, like the chips)", "setting of this account",
                                "a setting, not a published figure", low=1.0),
    # 2T2R resistive in-memory array (binary / ternary synapses).
    "rram_sense_pj": EnergyConstant(0.017, "pJ per synapse read", "reading one 2T2R synapse and its XNOR with "
                                    "the input", _RRAM_SENSE, _RRAM_SENSE_CHECK),
    "rram_program_pj": EnergyConstant(10.0, "pJ per synapse programmed", "programming one 2T2R synapse "
                                      "(both devices)", _RRAM, _RRAM_CHECK),
    "rram_flip_fraction": EnergyConstant(1.0, "fraction of updates", "updates that flip a binary weight and "
                                         "reprogram its devices (1: every update, the upper bound)",
                                         "setting of this account", "a setting, not a published figure"),
    "cmos_int_add_pj": EnergyConstant(0.1, "pJ per operation", "32-bit integer add (popcount accumulation, "
                                      "threshold of a binary neuron)", _HOROWITZ, _HOROWITZ_CHECK),
}


def constant_names() -> list[str]:
    """The names :func:`resolve_constants` accepts."""
    return sorted(DEFAULT_CONSTANTS)


def resolve_constants(overrides: Optional[Mapping[str, float]] = None) -> dict:
    """The constants' values with ``overrides`` applied, as ``{name: float}``.

    An unknown name, a value that is not a finite number, or one below the
    constant's lower bound (0 for energies, 1 for ``gpu_batch``) raises a
    ``ValueError`` naming it.
    """
    from lavaplast.core.validate import check_number

    values = {name: c.value for name, c in DEFAULT_CONSTANTS.items()}
    for name, value in (overrides or {}).items():
        if name not in DEFAULT_CONSTANTS:
            raise ValueError(f"unknown energy constant {name!r}; expected one of {', '.join(constant_names())}")
        c = DEFAULT_CONSTANTS[name]
        values[name] = check_number(f"energy constant {name}", value, low=c.low)
    if values["rram_flip_fraction"] > 1.0:
        raise ValueError(f"energy constant rram_flip_fraction must be a fraction in [0, 1], got "
                         f"{values['rram_flip_fraction']!r}")
    return values


def parse_constant(text: str) -> tuple[str, float]:
    """``"NAME=VALUE"`` as ``(name, value)``; a malformed item, an unknown name or a bad value is a ``ValueError``."""
    name, sep, raw = str(text).partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise ValueError(f"--constant {text!r}: expected NAME=VALUE, e.g. loihi_synop_pj=23.6")
    if name not in DEFAULT_CONSTANTS:
        raise ValueError(f"--constant {text!r}: unknown energy constant {name!r}; expected one of "
                         f"{', '.join(constant_names())}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"--constant {text!r}: {raw.strip()!r} is not a number") from None
    resolve_constants({name: value})  # range and finiteness
    return name, value


# --- counts ----------------------------------------------------------------------------


@dataclass
class OpCounts:
    """Operations per sample (see the module docstring for each field)."""

    synops: float = 0.0
    messages: float = 0.0
    bits: float = 0.0
    neuron_updates: float = 0.0
    weight_reads: float = 0.0
    state_reads: float = 0.0
    state_writes: float = 0.0
    synapse_updates: float = 0.0
    learning_macs: float = 0.0
    update_ops: float = 0.0

    def __add__(self, other: "OpCounts") -> "OpCounts":
        return OpCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                           for f in dataclasses.fields(self)})

    def to_dict(self) -> dict:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _sizes(sizes: Sequence[int]) -> list[int]:
    from lavaplast.core.validate import check_sizes

    return check_sizes("sizes", sizes)


def n_synapses(sizes: Sequence[int]) -> int:
    """``sum_l n_{l-1} n_l``: the synapses of a feed-forward chain."""
    sizes = _sizes(sizes)
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))


def dense_pass(sizes: Sequence[int], *, steps: int = 1, input_bits: int = VALUE_BITS,
               value_bits: int = VALUE_BITS) -> OpCounts:
    """A rate-based (dense) feed-forward pass repeated ``steps`` times: every synapse multiplies and
    accumulates once per step, every neuron sends its value once per step."""
    sizes = _sizes(sizes)
    syn, neurons = n_synapses(sizes), sum(sizes[1:])
    return OpCounts(synops=steps * syn, messages=steps * (sizes[0] + neurons),
                    bits=steps * (sizes[0] * input_bits + neurons * value_bits),
                    neuron_updates=steps * neurons, weight_reads=steps * syn)


def local_learning(sizes: Sequence[int], optimizer: str = "adam", *, feedback: bool = True) -> OpCounts:
    """One update of every synapse by the local rule, per sample.

    Each weight's gradient is one multiply-accumulate (error times input:
    an outer product); with ``feedback`` every hidden population first
    projects the output error through its ``(n_l, n_out)`` feedback matrix
    (direct feedback alignment) and the output error is sent to it
    (``n_out`` graded messages per hidden population). The optimizer reads
    and writes :data:`STATE_WORDS` words per synapse and costs
    :data:`OPS_PER_UPDATE` operations.
    """
    sizes = _sizes(sizes)
    if optimizer not in OPS_PER_UPDATE:
        raise ValueError(f"optimizer must be one of {', '.join(OPS_PER_UPDATE)}, got {optimizer!r}")
    syn = n_synapses(sizes)
    hidden, n_out = sizes[1:-1], sizes[-1]
    fb = sum(n * n_out for n in hidden) if feedback else 0
    messages = len(hidden) * n_out if feedback else 0
    words = STATE_WORDS[optimizer]
    return OpCounts(messages=messages, bits=messages * VALUE_BITS, state_reads=words * syn,
                    state_writes=words * syn, synapse_updates=syn, learning_macs=syn + fb,
                    update_ops=OPS_PER_UPDATE[optimizer] * syn)


def dense_training(sizes: Sequence[int], optimizer: str = "adam") -> OpCounts:
    """A training sample of the rate-based network: one dense pass and one local-rule update."""
    return dense_pass(sizes) + local_learning(sizes, optimizer)


def ep_step_synops(sizes: Sequence[int]) -> int:
    """Multiply-accumulates of one EP time step after the first: the bottom-up drive ``W_l s_{l-1}``
    of every layer above the first plus the top-down drive ``W_{l+1}^T s_{l+1}`` of every hidden
    layer. The input's drive ``W_1 x`` is constant while a sample is held, so it is computed once
    (:func:`ep_dense` adds it)."""
    sizes = _sizes(sizes)
    inner = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    return int(2 * inner)


def ep_rate_steps(T1: int, T2: int, nudging: str) -> int:
    """Time steps of the rate-based EP reference per training sample: the free phase and one
    (one-sided) or two (symmetric) nudged phases."""
    return int(T1 + T2 * (2 if nudging == "symmetric" else 1))


def ep_dense(sizes: Sequence[int], steps: int) -> OpCounts:
    """A rate-based EP network run for ``steps`` steps: the input's drive once, then every layer
    sends its state at every step (:func:`ep_step_synops`)."""
    sizes = _sizes(sizes)
    neurons = sum(sizes[1:])
    syn = sizes[0] * sizes[1] + steps * ep_step_synops(sizes)
    return OpCounts(synops=syn, messages=sizes[0] + steps * neurons,
                    bits=(sizes[0] + steps * neurons) * VALUE_BITS, neuron_updates=steps * neurons,
                    weight_reads=syn)


def ep_learning(sizes: Sequence[int], optimizer: str) -> OpCounts:
    """EP's update per sample: each synapse forms the contrast of two phase-end outer products
    (two multiply-accumulates) and moves once."""
    c = local_learning(sizes, optimizer, feedback=False)
    c.learning_macs = 2 * n_synapses(sizes)
    return c


def ep_dense_training(sizes: Sequence[int], T1: int, T2: int, nudging: str, optimizer: str) -> OpCounts:
    """A training sample of the rate-based EP reference: free and nudged phases, then the update."""
    return ep_dense(sizes, ep_rate_steps(T1, T2, nudging)) + ep_learning(sizes, optimizer)


def event_forward(sizes: Sequence[int], sent: Sequence[float], steps: int, *,
                  bits_per_message: Optional[Sequence[int]] = None) -> OpCounts:
    """Counts of a feed-forward event-driven run from measured messages per sample.

    ``sent[0]`` is the input's messages, ``sent[l]`` population ``l``'s; a
    message of layer ``l - 1`` is delivered to the ``n_l`` neurons of the
    next layer (one synaptic operation and one weight read each); every
    neuron updates once per input step (``steps``). ``bits_per_message[l]``
    defaults to one bit (spikes).
    """
    sizes = _sizes(sizes)
    if len(sent) != len(sizes):
        raise ValueError(f"sent must give the messages of the input and of each population ({len(sizes)} "
                         f"numbers), got {len(sent)}")
    bits = [SPIKE_BITS] * len(sizes) if bits_per_message is None else list(bits_per_message)
    synops = sum(sent[l - 1] * sizes[l] for l in range(1, len(sizes)))
    return OpCounts(synops=synops, messages=float(sum(sent)), bits=float(sum(m * b for m, b in zip(sent, bits))),
                    neuron_updates=steps * sum(sizes[1:]), weight_reads=synops)


def ep_events(sizes: Sequence[int], input_messages: float, events: Sequence[float], steps: int) -> OpCounts:
    """Counts of an event-driven EP window from measured events per sample.

    The input's ``input_messages`` non-zero values arrive once per window
    and reach the ``n_1`` neurons of the first layer; an event of layer
    ``l`` reaches the layer above (``n_{l+1}``, if any) and, for ``l >= 2``,
    the layer below (``n_{l-1}``; the input is clamped and does not
    listen). Every neuron updates at each of the ``steps`` window steps;
    events carry graded values (:data:`VALUE_BITS`).
    """
    sizes = _sizes(sizes)
    L = len(sizes) - 1
    if len(events) != L:
        raise ValueError(f"events must give one number per population ({L}), got {len(events)}")
    synops = input_messages * sizes[1]
    for l in range(1, L + 1):
        e = events[l - 1]
        if l < L:
            synops += e * sizes[l + 1]
        if l >= 2:
            synops += e * sizes[l - 1]
    messages = input_messages + sum(events)
    return OpCounts(synops=synops, messages=messages, bits=messages * VALUE_BITS,
                    neuron_updates=steps * sum(sizes[1:]), weight_reads=synops)


# --- energy ------------------------------------------------------------------------------


def energy(counts: OpCounts, substrate: str, constants: Optional[Mapping[str, float]] = None) -> dict:
    """Energy per sample of ``counts`` on ``substrate`` in picojoules: ``{"total": pJ, "parts": {...}}``.

    - ``gpu``: fp32 multiply-accumulates (``synops``, ``learning_macs``,
      ``update_ops``) at multiply + add, a neuron update at one add, every
      message through the cache (one 32-bit word), weights and optimizer
      state from DRAM (reads and writes), the last two and the optimizer
      arithmetic shared by ``gpu_batch`` samples;
    - ``loihi``: a synaptic operation at ``loihi_synop_pj`` (the weight
      read is part of it), a neuron update at ``loihi_neuron_update_pj``, a
      message at ``loihi_spike_pj`` plus ``loihi_hops_per_message`` tile
      hops, a synapse update at ``loihi_synupdate_pj`` (the learning
      engine's arithmetic and state are part of it);
    - ``rram``: a synaptic operation is one 2T2R sense (``rram_sense_pj``)
      plus an integer add of the popcount, a neuron update one integer add;
      learning runs in digital CMOS next to the array (fp32
      multiply-accumulates, hidden weights and moments in SRAM) and
      reprograms ``rram_flip_fraction`` of the updated synapses
      (``rram_program_pj``); messages between arrays are not priced.

    ``constants`` are overrides of :data:`DEFAULT_CONSTANTS`.
    """
    if substrate not in SUBSTRATES:
        raise ValueError(f"substrate must be one of {', '.join(SUBSTRATES)}, got {substrate!r}")
    k = resolve_constants(constants)
    c = counts
    if substrate == "gpu":
        mac = k["gpu_fp32_mult_pj"] + k["gpu_fp32_add_pj"]
        shared = 1.0 / k["gpu_batch"]
        parts = {
            "synaptic_macs": c.synops * mac,
            "neuron_updates": c.neuron_updates * k["gpu_fp32_add_pj"],
            "messages": c.messages * k["gpu_sram_32b_pj"],
            "weight_memory": (c.weight_reads + c.state_reads + c.state_writes) * k["gpu_dram_32b_pj"] * shared,
            "learning": (c.learning_macs + c.update_ops * shared) * mac,
        }
    elif substrate == "loihi":
        parts = {
            "synaptic_ops": c.synops * k["loihi_synop_pj"],
            "neuron_updates": c.neuron_updates * k["loihi_neuron_update_pj"],
            "messages": c.messages * (k["loihi_spike_pj"] + k["loihi_hops_per_message"] * k["loihi_hop_pj"]),
            "learning": c.synapse_updates * k["loihi_synupdate_pj"],
        }
    else:
        mac = k["gpu_fp32_mult_pj"] + k["gpu_fp32_add_pj"]
        parts = {
            "synaptic_ops": c.synops * (k["rram_sense_pj"] + k["cmos_int_add_pj"]),
            "neuron_updates": c.neuron_updates * k["cmos_int_add_pj"],
            "learning": (c.learning_macs + c.update_ops) * mac
                        + (c.state_reads + c.state_writes) * k["gpu_sram_32b_pj"],
            "programming": c.synapse_updates * k["rram_flip_fraction"] * k["rram_program_pj"],
        }
    parts = {name: float(v) for name, v in parts.items()}
    total = math.fsum(parts.values())
    return {"total": total, "parts": parts}


def constants_table(overrides: Optional[Mapping[str, float]] = None) -> dict:
    """Every constant as data: value in use, default, unit, what it prices, source and check."""
    values = resolve_constants(overrides)
    return {name: {**c.to_dict(), "value": values[name], "default": c.value,
                   "overridden": values[name] != c.value}
            for name, c in sorted(DEFAULT_CONSTANTS.items())}


def per_step(messages: float, steps: int, size: int) -> float:
    """Messages per neuron per time step: the activity ``messages / (steps * size)``."""
    return float(messages) / max(steps * size, 1)


__all__ = [
    "DEFAULT_CONSTANTS", "EnergyConstant", "OPS_PER_UPDATE", "OpCounts", "SPIKE_BITS", "STATE_WORDS", "SUBSTRATES",
    "VALUE_BITS", "constant_names", "constants_table", "dense_pass", "dense_training", "energy", "ep_dense",
    "ep_dense_training", "ep_events", "ep_learning", "ep_rate_steps", "ep_step_synops", "event_forward",
    "local_learning", "n_synapses", "parse_constant", "per_step", "resolve_constants",
]
