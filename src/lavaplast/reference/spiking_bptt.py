"""Offline BPTT training of the spiking binary network: the accuracy ceiling for on-chip rules.

The network is the one :class:`~lavaplast.reference.spiking.SpikingBinaryMLP`
models and :class:`~lavaplast.graph.spiking.LavaSpikingBinaryMLP` runs:
binary synapses ``sign(W_h)`` (sign(0) = +1, no bias), each followed by a
stock ``snn.Leaky(reset_mechanism="zero")`` whose decay is Lava's number
:func:`~lavaplast.reference.spiking.lava_decay`, and one step of synaptic
delay per layer. :class:`SpikingBPTT` unrolls exactly those dynamics with
autograd switched on, so a trained network deployed on the Lava graph fires
the very spikes of its float64 forward pass (see :func:`deploy_check`).

Training (:func:`train_bptt`):

- input: pixels in [0, 1] rate-coded as Bernoulli spikes over ``T`` steps
  (:func:`~lavaplast.reference.spiking.rate_encode`), a fresh draw per
  mini-batch from the seed ``(seed, epoch, batch index)``;
- gradient: backpropagation through time. The spike's Heaviside step gets
  snnTorch's surrogate derivative, ``fast_sigmoid`` by default:
  ``1 / (1 + slope |mem - threshold|)^2`` has heavy tails, so a neuron far
  from threshold still receives a signal, which matters here because binary
  synapses move the membrane by whole units and many neurons sit far from
  threshold. The default ``slope`` is ``0.5 / threshold``, a width of about
  two thresholds: on digits, ``0.25`` to ``1`` (times ``1 / threshold``)
  trained about equally well, ``4`` more slowly and ``10`` hardly at all
  (snnTorch's default, 25 for a threshold of 1, is steeper still). ``atan``
  is available too.
  snnTorch detaches the zero reset from the graph, as it does for every
  ``Leaky``;
- synapses: ``sign(W_h)`` with the straight-through gradient of
  :func:`~lavaplast.reference.binary.binary_weight_ste` (the gradient with
  respect to the binary weight goes to ``W_h`` unchanged), updated by
  :class:`~lavaplast.reference.optim.MetaplasticAdam` (``meta = 0`` is plain
  binary training);
- loss: cross-entropy of the output spike counts used as logits. The Lava
  graph's readout is the argmax of those counts, so the loss trains the very
  quantity the deployed network is judged on; a loss on the output membrane
  would train a readout the graph does not have. Counts lie in
  ``0..T + L``, a range in which the softmax can become confident without a
  temperature.

Training may run in float32 for speed; sums of binary weights over 0/1
spikes are whole numbers, exact in either precision, but the membranes
round differently, so every accuracy reported here (and every comparison
with Lava) comes from a float64 forward pass of the trained weights.
snnTorch's spike functions return float32 spikes whatever the membrane's
dtype; spikes are 0 or 1, so the forward pass loses nothing, but the
gradient reaching each spike is rounded to float32 even in a float64 run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import snntorch as snn
import torch
from torch import nn
from torch.nn import functional as F

from lavaplast.core import (
    binarize,
    check_choice,
    check_device,
    check_finite_array,
    check_int,
    check_labels,
    check_meta,
    check_number,
    check_positive,
    check_sizes,
    ternary_matmul,
)
from lavaplast.reference.binary import binary_weight_ste
from lavaplast.reference.spiking import SpikingBinaryMLP, check_spiking_network, lava_decay, rate_encode

SURROGATES = ("fast_sigmoid", "atan")
DTYPES = ("float32", "float64")
# Surrogate steepness in units of 1 / threshold: the default slope is
# SLOPE_PER_THRESHOLD / threshold, so the surrogate's width scales with the
# threshold (the membrane and threshold can be scaled together without
# changing a spike).
SLOPE_PER_THRESHOLD = 0.5


# --- argument checks --------------------------------------------------------------


def _check_beta(beta) -> float:
    try:
        return check_number("beta", beta, low=0.0, high=1.0, high_open=True)
    except ValueError:
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}") from None


def _check_bool(what: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _check_rates(what: str, x, n_in: Optional[int] = None) -> np.ndarray:
    """Pixel rates ``(N, n_in)`` in [0, 1], float64."""
    x = check_finite_array(what, x)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{what} must be a non-empty 2-D array (samples, inputs) of rates in [0, 1], "
                         f"got shape {x.shape}")
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(f"{what} must have {n_in} inputs per sample (sizes[0]), got {x.shape[1]}")
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"{what} must hold rates in [0, 1] (e.g. pixels / 255), got values in "
                         f"[{float(x.min())!r}, {float(x.max())!r}]")
    return x


def _default_slope(threshold: float, slope) -> float:
    return SLOPE_PER_THRESHOLD / threshold if slope is None else check_positive("slope", slope)


def encoding_seed(seed: int, *index: int) -> int:
    """The seed of one rate-coded mini-batch: a hash of ``(seed, *index)``.

    Training uses ``(seed, epoch, batch index)``, evaluation
    ``(seed, batch index)``, so every draw is reproducible and each
    mini-batch of each epoch gets a draw of its own.
    """
    return int(np.random.SeedSequence((int(seed),) + tuple(int(i) for i in index)).generate_state(1)[0])


# --- the binary dense layer ----------------------------------------------------------


class _ExactBinaryDense(torch.autograd.Function):
    """``x @ sign(W_h)^T`` with the bits of Lava's BinaryDense; gradients as for a plain product.

    In float64 the forward value comes from :func:`~lavaplast.core.ternary_matmul`,
    the sum the twin and the Lava process compute, so the result does not depend on
    BLAS's summation order even for non-integer inputs (currents). The gradient is
    that of ``x @ q^T``; the one with respect to ``q`` goes to ``W_h`` unchanged
    (straight through).
    """

    @staticmethod
    def forward(ctx, x, hidden):
        q = binarize(hidden)
        ctx.save_for_backward(x, q)
        return torch.from_numpy(ternary_matmul(x.detach().cpu().numpy(), q.detach().cpu().numpy()))

    @staticmethod
    def backward(ctx, grad_out):
        x, q = ctx.saved_tensors
        grad_x = grad_out @ q if ctx.needs_input_grad[0] else None
        grad_h = grad_out.T @ x if ctx.needs_input_grad[1] else None
        return grad_x, grad_h


def binary_dense(x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Synaptic currents ``x @ sign(hidden)^T`` ``(batch, n_out)``, straight-through to ``hidden``.

    float64 inputs get the exact sum of :class:`_ExactBinaryDense`; other
    dtypes a plain product, which is exact too whenever ``x`` holds spikes
    (whole-number sums below 2^24).
    """
    if x.dtype == torch.float64:
        return _ExactBinaryDense.apply(x, hidden)
    return F.linear(x, binary_weight_ste(hidden))


# --- the network ----------------------------------------------------------------------


class SpikingBPTT(nn.Module):
    """The spiking binary MLP of :class:`SpikingBinaryMLP`, trainable through time.

    ``sizes`` are the layer widths (``[n_in, n_1, ..., n_out]``); the hidden
    weights ``W_h`` (``self.hidden[l]``, ``(n_out, n_in)``) start uniform in
    ``(-init_scale, init_scale)`` drawn with ``seed``, in ``dtype``
    (``"float32"`` or ``"float64"``). Every layer has one stock
    ``snn.Leaky(beta=lava_decay(beta), threshold=threshold,
    reset_mechanism="zero")`` whose spike function has the surrogate
    derivative ``surrogate`` (``"fast_sigmoid"`` with ``slope``, default
    ``0.5 / threshold``, or ``"atan"`` with ``alpha = slope``). ``beta`` and
    ``threshold`` are one value for all layers, as on
    :class:`~lavaplast.graph.spiking.LavaSpikingBinaryMLP`.

    :meth:`forward` has the contract of :meth:`SpikingBinaryMLP.forward` and,
    in float64, its exact spikes; :meth:`twin` and :meth:`to_lava` hand the
    current weights to the twin and to the Lava graph.
    """

    def __init__(self, sizes: Sequence[int], beta: float = 0.9, threshold: float = 1.0, *,
                 surrogate: str = "fast_sigmoid", slope: Optional[float] = None, init_scale: float = 0.05,
                 seed: int = 0, dtype: str = "float32"):
        super().__init__()
        self.sizes = check_sizes("sizes", sizes, 2)
        self.beta = _check_beta(beta)
        self.threshold = check_positive("threshold", threshold)
        self.surrogate = check_choice("surrogate", surrogate, SURROGATES)
        self.slope = _default_slope(self.threshold, slope)
        init_scale = check_positive("init_scale", init_scale)
        seed = check_int("seed", seed, 0)
        self.dtype = getattr(torch, check_choice("dtype", dtype, DTYPES))
        gen = torch.Generator().manual_seed(seed)
        self.hidden = nn.ParameterList(
            nn.Parameter((torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1)
                         .mul_(init_scale).to(self.dtype))
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))
        spike_grad = (snn.surrogate.fast_sigmoid(slope=self.slope) if self.surrogate == "fast_sigmoid"
                      else snn.surrogate.atan(alpha=self.slope))
        # float64 tensors, as the twin uses: a Python float would be stored as
        # float32 and decay by a different number than Lava's.
        self.neurons = nn.ModuleList(
            snn.Leaky(beta=torch.tensor(lava_decay(self.beta), dtype=torch.float64),
                      threshold=torch.tensor(self.threshold, dtype=torch.float64),
                      reset_mechanism="zero", spike_grad=spike_grad)
            for _ in self.hidden)

    @classmethod
    def from_hidden(cls, hidden_weights: Sequence, beta: float = 0.9, threshold: float = 1.0, *,
                    dtype: str = "float64", **kwargs) -> "SpikingBPTT":
        """A network holding copies of ``hidden_weights`` (``(n_out, n_in)`` arrays or tensors), in ``dtype``."""
        weights = check_spiking_network(hidden_weights, beta, threshold)
        sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        net = cls(sizes, beta, threshold, dtype=dtype, **kwargs)
        with torch.no_grad():
            for p, w in zip(net.hidden, weights):
                p.copy_(torch.from_numpy(w))
        return net

    @property
    def n_layers(self) -> int:
        return len(self.hidden)

    def default_steps(self, T: int) -> int:
        """Steps needed for the last of ``T`` input steps to reach the output: ``T + n_layers``."""
        return T + self.n_layers

    def hidden_weights(self) -> list[np.ndarray]:
        """Copies of the hidden weights as float64 numpy arrays ``(n_out, n_in)``."""
        return [p.detach().cpu().numpy().astype(np.float64) for p in self.hidden]

    def forward(self, x, n_steps: Optional[int] = None, return_membranes: bool = False):
        """Run the network on ``x`` ``(T, B, n_in)`` (spikes or currents), keeping the autograd graph.

        Same contract as :meth:`SpikingBinaryMLP.forward`: ``n_steps``
        (default ``T + n_layers``) steps, ``x`` counting as zero past ``T``;
        returns ``(spikes, counts)`` (one ``(n_steps, B, n_l)`` recording per
        layer, the output spike counts ``(B, n_out)``), with
        ``return_membranes`` also the membranes per layer (before the reset).
        Everything runs in the dtype of the hidden weights.
        """
        dtype = self.hidden[0].dtype
        x = torch.as_tensor(x).to(device=self.hidden[0].device, dtype=dtype)
        if not bool(torch.isfinite(x).all()):
            check_finite_array("input", x.detach().cpu().numpy())
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] != self.sizes[0]:
            raise ValueError(f"input must have shape (T, B, {self.sizes[0]}) with T, B >= 1, got {tuple(x.shape)}")
        T, B, n_in = x.shape
        n_steps = check_int("n_steps", self.default_steps(T) if n_steps is None else n_steps, 1)
        # Step k of layer 1 hears input step k - 1, so steps 1..n_fed are fed;
        # their currents come from one product over all steps at once.
        n_fed = min(T, n_steps - 1)
        cur0 = (binary_dense(x[:n_fed].reshape(n_fed * B, n_in), self.hidden[0]).reshape(n_fed, B, -1)
                if n_fed > 0 else None)
        spikes: list[list] = [[] for _ in self.hidden]
        mems_out: list[list] = [[] for _ in self.hidden]
        mems = [x.new_zeros((B, n)) for n in self.sizes[1:]]
        for k in range(n_steps):
            for l in range(self.n_layers):
                # What layer l hears at step k left its source at step k - 1.
                if l == 0:
                    cur = cur0[k - 1] if 1 <= k <= n_fed else x.new_zeros((B, self.sizes[1]))
                elif k == 0:
                    cur = x.new_zeros((B, self.sizes[l + 1]))
                else:
                    cur = binary_dense(spikes[l - 1][k - 1], self.hidden[l])
                spk, mems[l] = self.neurons[l](cur, mems[l])
                # snnTorch's spike functions return float32 whatever the membrane's dtype.
                spikes[l].append(spk.to(dtype))
                mems_out[l].append(mems[l])
        spike_trains = [torch.stack(s) for s in spikes]
        counts = spike_trains[-1].sum(0)
        if return_membranes:
            return spike_trains, counts, [torch.stack(m) for m in mems_out]
        return spike_trains, counts

    @torch.no_grad()
    def predict(self, x, n_steps: Optional[int] = None) -> torch.Tensor:
        """Class predictions ``(B,)``: the output neuron with the most spikes (the first on ties)."""
        return self.forward(x, n_steps)[1].argmax(1)

    def twin(self) -> SpikingBinaryMLP:
        """The snnTorch twin :class:`SpikingBinaryMLP` (float64) with the current weights."""
        return SpikingBinaryMLP(self.hidden_weights(), beta=self.beta, threshold=self.threshold)

    def to_lava(self, batch: int = 1, timeout: float = 120.0):
        """The Lava graph :class:`~lavaplast.graph.spiking.LavaSpikingBinaryMLP` with the current weights."""
        return to_lava(self.hidden_weights(), beta=self.beta, threshold=self.threshold, batch=batch,
                       timeout=timeout)


# --- evaluation and deployment -------------------------------------------------------


def _float64_net(hidden_weights, beta, threshold) -> SpikingBPTT:
    return SpikingBPTT.from_hidden(hidden_weights, _check_beta(beta), check_positive("threshold", threshold),
                                   dtype="float64")


def _eval_batches(x: np.ndarray, T: int, seed: int, batch: int):
    """``(start, spikes)`` per evaluation mini-batch, rate-coded with :func:`encoding_seed` ``(seed, index)``."""
    for i, start in enumerate(range(0, len(x), batch)):
        yield start, rate_encode(x[start:start + batch], T, seed=encoding_seed(seed, i))


def predict_bptt(hidden_weights: Sequence, x, *, T: int, beta: float, threshold: float, seed: int = 0,
                 batch: int = 500) -> np.ndarray:
    """Predictions ``(N,)`` of the float64 network for pixel rates ``x`` ``(N, n_in)``.

    The rates are rate-coded over ``T`` steps per mini-batch of ``batch``
    samples with :func:`encoding_seed` ``(seed, batch index)``: the spikes
    depend on ``seed`` and ``batch``, and :func:`deploy_check` draws the same
    ones.
    """
    net = _float64_net(hidden_weights, beta, threshold)
    x = _check_rates("x", x, net.sizes[0])
    T = check_int("T", T, 1)
    seed = check_int("seed", seed, 0)
    batch = check_int("batch", batch, 1)
    preds = [net.predict(spikes).numpy() for _, spikes in _eval_batches(x, T, seed, batch)]
    return np.concatenate(preds)


def to_lava(hidden_weights: Sequence, *, beta: float, threshold: float, batch: int = 1, timeout: float = 120.0):
    """The Lava graph that runs ``hidden_weights``: ``LavaSpikingBinaryMLP(hidden_weights, beta=, threshold=)``."""
    from lavaplast.graph.spiking import LavaSpikingBinaryMLP

    return LavaSpikingBinaryMLP([np.asarray(w, dtype=np.float64) for w in hidden_weights], beta=beta,
                                threshold=threshold, batch=batch, timeout=timeout)


def deploy_check(hidden_weights: Sequence, x, *, T: int, beta: float, threshold: float, seed: int = 0,
                 batch: int = 500, timeout: float = 300.0) -> dict:
    """Run ``hidden_weights`` on the Lava graph, the float64 network and the twin, on the same spikes.

    ``x`` ``(N, n_in)`` are pixel rates, encoded per mini-batch as in
    :func:`predict_bptt` (same ``seed`` and ``batch``, same spikes). Each
    mini-batch is one Lava run of ``T + n_layers`` steps. Returns
    ``{"predictions_lava", "predictions_bptt"}`` (arrays ``(N,)``),
    ``"differing_spikes"`` (spikes of the Lava graph that differ from those
    of the float64 :class:`SpikingBPTT`, summed over layers, steps and
    samples), ``"differing_spikes_twin"`` (the same against
    :class:`SpikingBinaryMLP`), ``"differing_predictions"`` (Lava against
    :class:`SpikingBPTT`), ``"spikes"`` (spikes the network fired) and
    ``"seconds_lava"``.
    """
    net = _float64_net(hidden_weights, beta, threshold)
    x = _check_rates("x", x, net.sizes[0])
    T = check_int("T", T, 1)
    seed = check_int("seed", seed, 0)
    batch = check_int("batch", batch, 1)
    timeout = check_positive("timeout", timeout)
    weights = net.hidden_weights()
    twin = net.twin()
    lava_preds, ref_preds = [], []
    differing = differing_twin = fired = 0
    seconds = 0.0
    lava_nets: dict = {}
    for _, spikes in _eval_batches(x, T, seed, batch):
        with torch.no_grad():
            ref_trains, ref_counts = net(spikes)
            twin_trains, _ = twin(spikes)
        b = spikes.shape[1]
        if b not in lava_nets:
            lava_nets[b] = to_lava(weights, beta=net.beta, threshold=net.threshold, batch=b, timeout=timeout)
        t0 = time.perf_counter()
        trains, counts = lava_nets[b].run(spikes)
        seconds += time.perf_counter() - t0
        for lava_spk, ref_spk, twin_spk in zip(trains, ref_trains, twin_trains):
            differing += int(np.sum(lava_spk != ref_spk.numpy()))
            differing_twin += int(np.sum(lava_spk != twin_spk.numpy()))
            fired += int(ref_spk.sum())
        lava_preds.append(counts.argmax(1))
        ref_preds.append(ref_counts.argmax(1).numpy())
    lava_preds, ref_preds = np.concatenate(lava_preds), np.concatenate(ref_preds)
    return dict(predictions_lava=lava_preds, predictions_bptt=ref_preds, differing_spikes=differing,
                differing_spikes_twin=differing_twin, differing_predictions=int(np.sum(lava_preds != ref_preds)),
                spikes=fired, seconds_lava=seconds)


def save_weights(path, hidden_weights: Sequence, *, signs_only: bool = True, **extra) -> Path:
    """Write ``hidden_weights`` as a graph weights file (``w0``, ``w1``, ... ``(post, pre)``), atomically.

    With ``signs_only`` (default) the file holds ``sign(W_h)`` as int8 via
    :func:`lavaplast.graph.train_rate.save_sign_weights`, all inference
    needs; otherwise the float32 hidden weights, as
    :mod:`lavaplast.graph.export_weights` writes them (their magnitudes are
    the metaplastic consolidation, needed to continue training). A graph's
    connection reads one with ``weights = { file = ..., key = "w0" }``.
    ``extra`` arrays (accuracy, settings) are stored beside them.
    """
    from lavaplast.outputs import save_npz

    weights = check_spiking_network(list(hidden_weights), 0.5, 1.0)
    signs_only = _check_bool("signs_only", signs_only)
    if signs_only:
        from lavaplast.graph.train_rate import save_sign_weights

        return save_sign_weights(path, {f"w{l}": w for l, w in enumerate(weights)}, **extra)
    arrays = {f"w{l}": w.astype(np.float32) for l, w in enumerate(weights)}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    return save_npz(path, **arrays)


# --- training -----------------------------------------------------------------------


@dataclass
class BPTTResult:
    """What :func:`train_bptt` returns.

    ``hidden_weights``: the trained ``(n_out, n_in)`` float64 arrays;
    ``history``: one dict per epoch (``epoch``, ``loss`` the mean training
    loss, ``train_accuracy`` in percent from the training forward passes,
    ``test_accuracy`` in percent from a float64 pass over the test set or
    ``None``, ``seconds``); ``settings``: the arguments of the run.
    """

    hidden_weights: list
    history: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_lava(self, batch: int = 1, timeout: float = 120.0):
        """The Lava graph that runs the trained weights (see :func:`to_lava`)."""
        return to_lava(self.hidden_weights, beta=self.settings["beta"], threshold=self.settings["threshold"],
                       batch=batch, timeout=timeout)

    def twin(self) -> SpikingBinaryMLP:
        """The snnTorch twin :class:`SpikingBinaryMLP` with the trained weights."""
        return SpikingBinaryMLP(self.hidden_weights, beta=self.settings["beta"],
                                threshold=self.settings["threshold"])


def train_bptt(x, y, sizes: Sequence[int], *, T: int = 25, beta: float = 0.9, threshold: float = 1.0,
               epochs: int = 1, batch: int = 100, lr: float = 0.005, meta: float = 0.0, seed: int = 0,
               surrogate: str = "fast_sigmoid", slope: Optional[float] = None, init_scale: float = 0.05,
               dtype: str = "float32", x_test=None, y_test=None, eval_batch: int = 500,
               progress: bool = False, on_epoch: Optional[Callable[[dict], None]] = None,
               device: str = "cpu") -> BPTTResult:
    """Train a :class:`SpikingBPTT` of ``sizes`` on pixel rates ``x`` ``(N, sizes[0])`` and labels ``y``.

    ``epochs`` passes in a random order (drawn with ``seed``) over mini-batches
    of ``batch`` samples, each rate-coded over ``T`` steps with
    :func:`encoding_seed` ``(seed, epoch, index)`` and run ``T + L`` steps;
    loss: cross-entropy of the output spike counts; optimizer:
    :class:`MetaplasticAdam` (``lr``, ``meta``). ``beta``, ``threshold``,
    ``surrogate``, ``slope``, ``init_scale`` and ``dtype`` (of the training
    arithmetic) are those of :class:`SpikingBPTT`. With ``x_test``/``y_test``
    the float64 network's test accuracy (:func:`predict_bptt`, seed ``seed``,
    ``eval_batch``) is recorded after every epoch. ``progress`` draws a bar;
    ``on_epoch``, if given, is called with each epoch's history entry as soon
    as the epoch ends (to log a long run). ``device`` (``cpu``, ``cuda``,
    ``cuda:N``) is where the training runs; the test predictions and the
    returned weights are computed on the CPU in float64. Bad arguments raise a ``ValueError`` that names the value and what was
    expected.
    """
    from lavaplast.progress import progress_bar
    from lavaplast.reference.optim import MetaplasticAdam

    sizes = check_sizes("sizes", sizes, 2)
    x = _check_rates("x", x, sizes[0])
    y = check_labels("y", y, len(x), sizes[-1])
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test must be given together (or neither)")
    if x_test is not None:
        x_test = _check_rates("x_test", x_test, sizes[0])
        y_test = check_labels("y_test", y_test, len(x_test), sizes[-1])
    settings = dict(
        sizes=sizes, T=check_int("T", T, 1), beta=_check_beta(beta), threshold=check_positive("threshold", threshold),
        epochs=check_int("epochs", epochs, 1), batch=check_int("batch", batch, 1), lr=check_positive("lr", lr),
        meta=check_meta(meta), seed=check_int("seed", seed, 0),
        surrogate=check_choice("surrogate", surrogate, SURROGATES),
        init_scale=check_positive("init_scale", init_scale), dtype=check_choice("dtype", dtype, DTYPES),
        eval_batch=check_int("eval_batch", eval_batch, 1), train_samples=len(x), device=check_device(device),
    )
    settings["slope"] = _default_slope(settings["threshold"], slope)
    progress = _check_bool("progress", progress)
    if on_epoch is not None and not callable(on_epoch):
        raise ValueError(f"on_epoch must be None or a callable, got {on_epoch!r}")

    net = SpikingBPTT(sizes, settings["beta"], settings["threshold"], surrogate=settings["surrogate"],
                      slope=settings["slope"], init_scale=settings["init_scale"], seed=settings["seed"],
                      dtype=settings["dtype"]).to(settings["device"])
    opt = MetaplasticAdam(net.parameters(), lr=settings["lr"], meta=settings["meta"])
    labels = torch.from_numpy(y).to(settings["device"])
    rng = np.random.default_rng(settings["seed"])
    T, batch = settings["T"], settings["batch"]
    n_batches = -(-len(x) // batch)
    history = []
    for epoch in range(settings["epochs"]):
        t0 = time.perf_counter()
        order = rng.permutation(len(x))
        total = correct = 0.0
        bar = progress_bar(range(n_batches), progress, desc=f"BPTT epoch {epoch + 1}/{settings['epochs']}",
                           unit="batch", total=n_batches)
        for i in bar:
            idx = order[i * batch:(i + 1) * batch]
            spikes = torch.from_numpy(rate_encode(x[idx], T, seed=encoding_seed(settings["seed"], epoch, i)))
            spikes = spikes.to(settings["device"])
            _, counts = net(spikes)
            loss = F.cross_entropy(counts, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += float((counts.detach().argmax(1) == labels[idx]).sum())
        test_accuracy = None
        if x_test is not None:
            preds = predict_bptt(net.hidden_weights(), x_test, T=T, beta=settings["beta"],
                                 threshold=settings["threshold"], seed=settings["seed"], batch=settings["eval_batch"])
            test_accuracy = float(np.mean(preds == y_test) * 100)
        history.append(dict(epoch=epoch + 1, loss=total / len(x), train_accuracy=correct / len(x) * 100,
                            test_accuracy=test_accuracy, seconds=time.perf_counter() - t0))
        if on_epoch is not None:
            on_epoch(dict(history[-1]))
    return BPTTResult(hidden_weights=net.hidden_weights(), history=history, settings=settings)
