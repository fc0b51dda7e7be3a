"""The learning benchmark (benchmarks/bench_learning.py) on a tiny network: real Lava runs, no mocks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_learning.py"
SIZES = [20, 8, 3]


@pytest.fixture(scope="module")
def bench():
    # benchmarks/ is not a package: load the script as a module of its own. It
    # must be in sys.modules while it runs (its dataclass looks itself up there).
    name = "bench_learning_under_test"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def test_stock_stdp_graph_changes_its_weights(bench):
    x, y, info = bench.load_inputs(SIZES[0], SIZES[-1], 50, "random")
    assert info["source"] == "random"
    out = bench.measure(bench.stdp_runner(SIZES, 3), x, y, samples=20, chunks=2)
    assert out["samples"] == 20 and out["samples_per_s"] > 0 and out["startup_seconds"] > 0
    assert out["weights_changed"]
    for change, (n_out, n_in) in zip(out["weight_change"], zip(SIZES[1:], SIZES[:-1])):
        assert change["shape"] == [n_out, n_in]
        assert change["mean_abs_change"] > 0 and change["fraction_changed"] > 0


def test_benchmark_writes_the_expected_json(bench, tmp_path):
    out = tmp_path / "learning.json"
    argv = ["--sizes", *map(str, SIZES), "--batch", "4", "-T", "4", "--stdp-samples", "30",
            "--stdp-t-samples", "5", "--batch1-samples", "12", "--batchn-samples", "40", "--lif-batch1-samples", "2",
            "--lif-batchn-samples", "8", "--chunks", "2", "--repeats", "1", "--out", str(out)]
    bench.main(argv)
    result = json.loads(out.read_text())
    for key in ("benchmark", "lava_version", "sizes", "data", "settings", "stock_config", "sign_config",
                "spiking_config", "modes", "ratios", "ratios_per_pass", "goals", "startup_seconds",
                "stock_weights_changed", "command", "total_seconds"):
        assert key in result, key
    assert result["sizes"] == SIZES
    assert result["data"]["source"] == "random"  # 20 inputs cannot be MNIST
    assert result["settings"]["steps_per_sample"] == 4
    assert result["command"].startswith("python benchmarks/bench_learning.py --sizes 20 8 3")
    assert list(result["modes"]) == ["stdp_1step", "stdp_Tstep", "sign_batch1", "sign_batchN", "sign_batch1_pipelined",
                                     "sign_batchN_pipelined", "lif_batch1", "lif_batchN"]
    modes = result["modes"]
    for name, mode in modes.items():
        assert mode["samples"] > 0 and mode["seconds"] > 0
        assert mode["samples_per_s"] > 0 and mode["startup_seconds"] > 0
        chunk_rates = mode["runs"][0]["chunk_samples_per_s"]
        assert len(chunk_rates) == 2 and all(r > 0 for r in chunk_rates)
        assert mode["weights_changed"], name
    assert modes["stdp_Tstep"]["runs"][0]["steps_per_sample"] == 4
    assert modes["sign_batchN"]["runs"][0]["batch"] == 4
    assert modes["sign_batch1_pipelined"]["runs"][0]["schedule"] == "pipelined"
    # The spiking learner: T steps per sample, whole batches, the warm-up batch not timed.
    lif1, lifn = modes["lif_batch1"]["runs"][0], modes["lif_batchN"]["runs"][0]
    assert (lif1["steps_per_sample"], lif1["batch"], lif1["samples"]) == (4, 1, 2)
    assert (lifn["batch"], lifn["samples"], lifn["steps"]) == (4, 8, (2 + 1) * 4 + 2)  # + L for the last update
    assert result["stock_weights_changed"] is True
    assert set(result["ratios"]) == {"sign_batch1/stdp_1step", "sign_batchN/stdp_1step",
                                     "sign_batch1_pipelined/stdp_1step", "sign_batchN_pipelined/stdp_1step",
                                     "lif_batch1/stdp_Tstep", "lif_batchN/stdp_Tstep"}
    for key, value in result["ratios"].items():
        name, against = key.split("/")
        assert value > 0
        assert np.isclose(value, modes[name]["samples_per_s"] / modes[against]["samples_per_s"])
    goals = result["goals"]
    assert {k: g["at_least"] for k, g in goals.items()} == {
        "sign_batch1_pipelined/stdp_1step": 1.0, "sign_batchN_pipelined/stdp_1step": 30.0,
        "lif_batch1/stdp_Tstep": 1.0, "lif_batchN/stdp_Tstep": 30.0}
    for key, goal in goals.items():
        assert goal["measured"] == result["ratios"][key]
        assert goal["met"] == (goal["measured"] >= goal["at_least"])
    assert "batch 4" in goals["lif_batchN/stdp_Tstep"]["goal"]


def test_benchmark_rejects_a_window_too_short_for_the_spiking_learner(bench):
    with pytest.raises(ValueError, match="steps_per_sample must be > the number of connections"):
        bench.run_benchmark(SIZES, steps_per_sample=2)


def test_add_learner_compares_a_new_graph_runner(bench):
    x, y, _ = bench.load_inputs(SIZES[0], SIZES[-1], 50, "random")
    result = {}
    bench.add_learner(result, "stdp_Tstep", bench.stdp_runner(SIZES, 3, check_weights=False), against=None,
                      x=x, y=y, samples=5, chunks=1)
    with pytest.raises(ValueError, match="unknown mode"):
        bench.add_learner(result, "other", bench.sign_learner_runner(SIZES, 1), against="missing",
                          x=x, y=y, samples=4)
    entry = bench.add_learner(result, "sign_batch1", bench.sign_learner_runner(SIZES, 1), against="stdp_Tstep",
                              x=x, y=y, samples=6, chunks=2)
    assert entry["samples_per_s"] > 0 and entry["weights_changed"]
    assert result["ratios"]["sign_batch1/stdp_Tstep"] > 0
