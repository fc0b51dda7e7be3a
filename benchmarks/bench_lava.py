"""Lava simulator throughput: the on-chip learning graph against stock Lava.

Measured side by side in one process, on Lava's CPU simulator:

- stock Lava: ``RingBuffer -> (Dense -> LIF) x L`` of the given sizes, one
  sample per time step (binary spikes);
- lavaplast's learning graph (``LavaBinaryMLP.train``: BatchSource,
  BinaryDense with metaplastic local learning, SignNeuron with DFA feedback,
  ErrorNeuron), at batch 1 and at a larger batch;
- lavaplast's inference graph (one batch per step);
- reading a hidden-weight matrix back with ``Var.get`` against the
  shared-memory read-back;
- the deviation of the fixed_pt model's hidden weights from floating_pt
  after the same 200 host-gradient SGD steps;
- event-driven EP training on Lava against the rate-based reference;
- what ``LavaSession`` (timeout, signal handling, watch for failed models)
  costs against Lava's own blocking ``run``.

    python benchmarks/bench_lava.py --out benchmarks/results/lava.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF

from common import save  # benchmarks/common.py (the script's folder is on sys.path)
from lavaplast.graph import LavaBinaryMLP
from lavaplast.proc import BatchSource, BinaryDense, LavaSession, SharedArray
from lavaplast.reference import init_local_mlp


def _stock_graph(sizes):
    rng = np.random.default_rng(0)
    src = RingBuffer(data=(rng.random((sizes[0], 64)) < 0.2).astype(float))
    prev = src.s_out
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        dense = Dense(weights=rng.normal(0, 1, (n_out, n_in)))
        lif = LIF(shape=(n_out,), du=1.0, dv=0.1, vth=5.0)
        prev.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        prev = lif.s_out
    return src


def session_overhead(sizes, steps: int, short: int = 10, repeats: int = 3) -> dict:
    """The stock graph run by Lava's own blocking ``run`` against ``LavaSession.run``
    (timeout, signal handling, failure watch), alternated, best of ``repeats``:
    one run of ``steps`` steps, and ``steps // short`` runs of ``short`` steps."""
    from lava.magma.core.run_conditions import RunSteps

    cfg = Loihi2SimCfg(select_tag="floating_pt")
    best = dict(plain_long=0.0, session_long=0.0, plain_short=0.0, session_short=0.0)
    for _ in range(repeats):
        for mode in ("plain", "session"):
            src = _stock_graph(sizes)
            if mode == "plain":
                advance, stop = (lambda n: src.run(condition=RunSteps(num_steps=n), run_cfg=cfg)), src.stop
            else:
                session = LavaSession(src, cfg, timeout=600)
                advance, stop = session.run, session.close
            try:
                advance(10)  # start-up is not part of the rate
                t0 = time.perf_counter()
                advance(steps)
                long_rate = steps / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                for _ in range(steps // short):
                    advance(short)
                short_rate = steps // short * short / (time.perf_counter() - t0)
            finally:
                stop()
            best[f"{mode}_long"] = max(best[f"{mode}_long"], long_rate)
            best[f"{mode}_short"] = max(best[f"{mode}_short"], short_rate)
    return dict(steps=steps, short_run_steps=short, repeats=repeats, steps_per_s=best,
                long_run_ratio=best["session_long"] / best["plain_long"],
                short_run_ratio=best["session_short"] / best["plain_short"])


def stock_graph_steps_per_s(sizes, steps: int) -> float:
    src = _stock_graph(sizes)
    with LavaSession(src, Loihi2SimCfg(select_tag="floating_pt"), timeout=600) as session:
        session.run(10)  # start-up is not part of the rate
        t0 = time.perf_counter()
        session.run(steps)
        return steps / (time.perf_counter() - t0)


def learning_graph(sizes, batch: int, windows: int) -> dict:
    state = init_local_mlp(sizes, meta=1.35, lr=0.005, seed=0)
    window = len(sizes)  # steps per batch: one per weight layer, plus one
    # The first chunk (one batch) includes compiling and starting the graph.
    net = LavaBinaryMLP(state, batch=batch, chunk_steps=10**9)
    rng = np.random.default_rng(0)
    x = rng.random((batch * (windows + 1), sizes[0]))
    y = rng.integers(0, sizes[-1], len(x))
    t0 = time.perf_counter()
    steps = net.train(x, y, np.arange(len(x)))
    total = time.perf_counter() - t0
    run = sum(sec for _, sec in net.last_chunks[1:])
    return dict(batch=batch, steps=steps - window, seconds=round(run, 3), total_seconds=round(total, 3),
                steps_per_s=(steps - window) / run, samples_per_s=batch * windows / run)


def inference_graph(sizes, batch: int, n: int) -> dict:
    net = LavaBinaryMLP(init_local_mlp(sizes, seed=0), batch=batch, chunk_steps=10**9)
    x = np.random.default_rng(0).random((n, sizes[0]))
    t0 = time.perf_counter()
    net.predict(x)
    total = time.perf_counter() - t0
    (first, _), *rest = net.last_chunks  # the first chunk includes start-up
    steps = sum(k for k, _ in rest)
    run = sum(sec for _, sec in rest)
    return dict(batch=batch, samples=n, seconds=round(total, 3), steps_per_s=steps / run,
                samples_per_s=steps * batch / run)


def readback(shape) -> dict:
    w = np.random.default_rng(0).normal(0, 0.1, shape)
    with SharedArray(shape) as out:
        dense = BinaryDense(hidden_weights=w, batch=1, readout=out.spec)
        with LavaSession(dense, Loihi2SimCfg(select_tag="floating_pt"), timeout=600) as session:
            session.run(1)
            t0 = time.perf_counter()
            via_shm = out.read()
            t_shm = time.perf_counter() - t0
            t0 = time.perf_counter()
            via_get = dense.hidden_weights.get()
            t_get = time.perf_counter() - t0
    assert np.array_equal(via_shm, via_get)
    return dict(shape=list(shape), var_get_seconds=t_get, shared_memory_seconds=t_shm,
                speedup=t_get / max(t_shm, 1e-9))


def fixed_point_deviation(shape=(64, 100), steps: int = 200) -> dict:
    """Hidden weights after the same host-gradient SGD steps, fixed_pt against floating_pt."""
    rng = np.random.default_rng(0)
    w0 = rng.uniform(-0.3, 0.3, size=shape)
    grads = np.concatenate([rng.normal(0.02, 0.1, size=shape) for _ in range(steps)])

    def run(tag, **kwargs):
        src = BatchSource(data=grads, batch=shape[0])
        with SharedArray(shape) as out:
            dense = BinaryDense(hidden_weights=w0, learning="host", optimizer="sgd", lr=0.05, meta=1.35,
                                readout=out.spec, **kwargs)
            src.s_out.connect(dense.grad_in)
            with LavaSession(dense, Loihi2SimCfg(select_tag=tag), timeout=600) as session:
                session.run(steps)
            return out.read()

    flt = run("floating_pt")
    result = dict(shape=list(shape), steps=steps, lr=0.05, meta=1.35, hidden_bits=16, frac_bits=12,
                  lut_entries=512, mean_abs_change_float=float(np.abs(flt - w0).mean()))
    for name, stochastic in (("round_to_nearest", False), ("stochastic_rounding", True)):
        fix = run("fixed_pt", stochastic_rounding=stochastic)
        result[name] = dict(max_abs_dev=float(np.abs(fix - flt).max()), mean_abs_dev=float(np.abs(fix - flt).mean()),
                            sign_agreement=float((np.sign(fix) == np.sign(flt)).mean()))
    return result


def ep_graph(sizes=(784, 500, 10), batch: int = 100, windows: int = 10) -> dict:
    """Event-driven EP training on Lava against the rate-based reference, same batches."""
    import torch

    from lavaplast.graph import LavaEPNetwork
    from lavaplast.reference.ep import EPNetwork

    rng = np.random.default_rng(0)
    x = rng.random((batch * windows, sizes[0]))
    y = rng.integers(0, sizes[-1], len(x))
    kw = dict(T1=30, T2=10, beta=0.5, lrs=[0.2, 0.1], seed=0, dtype=torch.float64)
    lava = LavaEPNetwork(EPNetwork(list(sizes), **kw), batch=batch, threshold=0.01)
    t0 = time.perf_counter()
    lava.train(x, y, np.arange(len(x)))
    lava_s = time.perf_counter() - t0
    ref = EPNetwork(list(sizes), **kw)
    t0 = time.perf_counter()
    for k in range(0, len(x), batch):
        ref.train_batch(x[k:k + batch], y[k:k + batch])
    ref_s = time.perf_counter() - t0
    return dict(sizes=list(sizes), batch=batch, samples=len(x), threshold=0.01, lava_seconds_incl_startup=lava_s,
                lava_steps_per_s=lava.steps / lava_s, lava_samples_per_s=len(x) / lava_s,
                reference_samples_per_s=len(x) / ref_s, events_per_sample=lava.events_per_sample(len(x)),
                dense_messages_per_sample=lava.dense_messages_per_sample())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 256, 10])
    p.add_argument("--stock-steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--windows", type=int, default=100, help="batches in the timed learning run")
    p.add_argument("--readback-shape", type=int, nargs=2, default=[256, 784])
    p.add_argument("--out", default="benchmarks/results/lava.json")
    args = p.parse_args(argv)

    sizes = args.sizes
    n_layers = len(sizes) - 1
    stock = stock_graph_steps_per_s(sizes, args.stock_steps)
    learn_1 = learning_graph(sizes, 1, args.windows)
    learn_b = learning_graph(sizes, args.batch, args.windows)
    infer_1 = inference_graph(sizes, 1, args.stock_steps)
    infer = inference_graph(sizes, args.batch, args.batch * args.windows)
    rb = readback(tuple(args.readback_shape))
    fixed = fixed_point_deviation()
    ep = ep_graph()
    overhead = session_overhead(sizes, 2000)
    result = dict(
        benchmark="lava_throughput",
        sizes=sizes,
        processes=dict(stock=1 + 2 * n_layers, learning=2 + 2 * n_layers),
        stock_dense_lif=dict(steps_per_s=stock, samples_per_s=stock),
        learning_batch_1=learn_1,
        learning_batch_n=learn_b,
        inference_batch_1=infer_1,
        inference_batch_n=infer,
        inference_steps_ratio_to_stock=infer_1["steps_per_s"] / stock,
        readback=rb,
        fixed_point=fixed,
        event_driven_ep=ep,
        session_overhead=overhead,
        learning_steps_ratio_to_stock=learn_1["steps_per_s"] / stock,
        batching_gain_samples_per_s=learn_b["samples_per_s"] / learn_1["samples_per_s"],
        learning_samples_ratio_to_stock=learn_b["samples_per_s"] / stock,
    )
    out = save(result, args.out)
    print(f"stock Dense+LIF graph        {stock:8.0f} steps/s  (= samples/s)")
    print(f"learning graph, batch 1      {learn_1['steps_per_s']:8.0f} steps/s  {learn_1['samples_per_s']:8.0f} samples/s")
    print(f"learning graph, batch {args.batch:<5d}  {learn_b['steps_per_s']:8.0f} steps/s  "
          f"{learn_b['samples_per_s']:8.0f} samples/s")
    print(f"inference graph, batch 1     {infer_1['steps_per_s']:8.0f} steps/s  "
          f"{infer_1['samples_per_s']:8.0f} samples/s")
    print(f"inference graph, batch {args.batch:<4d}  {infer['steps_per_s']:8.0f} steps/s  "
          f"{infer['samples_per_s']:8.0f} samples/s")
    print(f"batching gain {result['batching_gain_samples_per_s']:.1f}x; learning/stock steps "
          f"{result['learning_steps_ratio_to_stock']:.2f}; read-back {rb['speedup']:.0f}x faster than Var.get "
          f"({rb['var_get_seconds']:.2f} s vs {rb['shared_memory_seconds'] * 1e3:.2f} ms)")
    for name in ("round_to_nearest", "stochastic_rounding"):
        f = fixed[name]
        print(f"fixed_pt vs float ({name}): mean |dW| {f['mean_abs_dev']:.4f} (float moved "
              f"{fixed['mean_abs_change_float']:.3f}), max {f['max_abs_dev']:.4f}, signs agree {100 * f['sign_agreement']:.2f}%")
    print(f"event-driven EP {ep['sizes']}: Lava {ep['lava_samples_per_s']:.0f} samples/s "
          f"({ep['lava_steps_per_s']:.0f} steps/s, start-up included), rate-based reference "
          f"{ep['reference_samples_per_s']:.0f} samples/s; {ep['events_per_sample']:.0f} events per sample "
          f"against {ep['dense_messages_per_sample']} dense")
    print(f"LavaSession against Lava's blocking run (stock graph): {overhead['long_run_ratio']:.3f}x steps/s for "
          f"one run of {overhead['steps']} steps, {overhead['short_run_ratio']:.3f}x for runs of "
          f"{overhead['short_run_steps']} steps")
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()
