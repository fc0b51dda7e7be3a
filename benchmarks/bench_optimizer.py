"""Training throughput of the BNN with MetaplasticAdam against torch.optim.Adam.

Both optimizers train the same network on the same batches, interleaved in
one process (rounds of A, B, C, A, B, C, ...) so machine noise hits them
alike; the JSON reports the median samples/s of each and their ratio.

    python benchmarks/bench_optimizer.py --out benchmarks/results/optimizer.json
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from common import save  # benchmarks/common.py (the script's folder is on sys.path)
from lavaplast.reference import BNN, MetaplasticAdam


def make_optimizers(net, lr: float, meta: float) -> dict:
    return {
        f"MetaplasticAdam(meta={meta})": lambda: MetaplasticAdam(net.parameters(), lr=lr, meta=meta, weight_decay=1e-7),
        "MetaplasticAdam(meta=0)": lambda: MetaplasticAdam(net.parameters(), lr=lr, meta=0.0, weight_decay=1e-7),
        "torch.optim.Adam": lambda: torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-7),
    }


def time_steps(net, opt, x, y, steps: int, batch: int) -> float:
    n = len(x)
    start = time.perf_counter()
    for s in range(steps):
        i = (s * batch) % (n - batch)
        loss = F.cross_entropy(net(x[i:i + batch]), y[i:i + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=60, help="training steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--meta", type=float, default=1.35)
    p.add_argument("--out", default="benchmarks/results/optimizer.json")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    sizes = [784, *args.hidden, 10]
    net = BNN(sizes)
    # Real-valued pixels in [0, 1] and random labels: the cost does not depend on the data.
    x = torch.rand(args.batch * 50, 784)
    y = torch.randint(0, 10, (len(x),))
    makers = make_optimizers(net, 0.005, args.meta)
    opts = {name: make() for name, make in makers.items()}
    for name, opt in opts.items():  # warm-up: allocate moments, scratch buffers
        time_steps(net, opt, x, y, 5, args.batch)
    samples = {name: [] for name in opts}
    for _ in range(args.rounds):
        for name, opt in opts.items():
            samples[name].append(time_steps(net, opt, x, y, args.steps, args.batch))
    median = {name: statistics.median(v) for name, v in samples.items()}
    meta_name = next(iter(opts))
    result = dict(
        benchmark="optimizer_throughput",
        network=sizes,
        batch=args.batch,
        steps_per_round=args.steps,
        rounds=args.rounds,
        samples_per_s_median=median,
        samples_per_s_rounds=samples,
        ratio_metaplastic_to_adam=median[meta_name] / median["torch.optim.Adam"],
        overhead_percent=100 * (median["torch.optim.Adam"] / median[meta_name] - 1),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
    )
    out = save(result, args.out)
    for name, v in median.items():
        print(f"{name:32s} {v:9.0f} samples/s")
    print(f"metaplastic / Adam throughput ratio: {result['ratio_metaplastic_to_adam']:.3f} "
          f"(overhead {result['overhead_percent']:.1f}%)  -> {out}")
    return result


if __name__ == "__main__":
    main()
