"""Ternary reference networks, error-aware training and `lavaplast robustness`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lavaplast.cli import main
from lavaplast.core import DeviceFaults, ternarize
from lavaplast.experiments import ContinualConfig, run_continual
from lavaplast.experiments.robustness import RobustnessConfig, TrainedRun, level_at_loss, run_robustness
from lavaplast.reference import BNN
from lavaplast.reference.binary import BinaryLinear

SMALL = dict(protocol="permuted", n_tasks=1, permute_first=False, dataset="digits", hidden=[32], epochs=3,
             batch_size=20, lr=0.01, seed=0)


def test_ternary_layer_forward_and_straight_through_gradient():
    torch.manual_seed(0)
    layer = BinaryLinear(12, 5, quantizer="ternary", ternary_threshold=0.02)
    x = torch.randn(7, 12, dtype=torch.float32)
    out = layer(x)
    q = ternarize(layer.weight.detach().numpy().astype(np.float64), 0.02)
    assert set(np.unique(q)) <= {-1.0, 0.0, 1.0} and (q == 0).any() and (q != 0).any()
    np.testing.assert_allclose(out.detach().numpy(), x.numpy() @ q.T, rtol=1e-6, atol=1e-6)
    out.sum().backward()
    # d(sum x @ q^T)/dq = column sums of x, handed to the hidden weights unchanged.
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.tile(x.sum(0).numpy(), (5, 1)), rtol=1e-6)


def test_read_faults_in_the_reference_are_the_core_read_model():
    torch.manual_seed(1)
    net = BNN((10, 6, 3), quantizer="ternary", ternary_threshold=0.02, batchnorm="none")
    x = torch.randn(4, 10)
    ideal = net(x)
    net.set_read_faults(0.2, frozen=True, seed=5)
    first, again = net(x), net(x)
    assert torch.equal(first, again)  # frozen: the same devices fail at every read
    assert not torch.equal(first, ideal)
    # The same chip drawn independently by the core model gives the same output.
    h = x
    for k, layer in enumerate(net.linear_layers()):
        read = DeviceFaults(tuple(layer.weight.shape), ber=0.2, kind="ternary", frozen=True, seed=5, array=k).read(
            layer.binary_weight().numpy().astype(np.float64))
        h = F.linear(h, torch.from_numpy(read).float())
        if k == 0:
            h = torch.where(h >= 0, 1.0, -1.0)
    torch.testing.assert_close(first, h)
    net.set_read_faults(0.2, frozen=False, seed=5)
    assert not torch.equal(net(x), net(x))  # transient: a new draw at every read
    net.set_read_faults(0.0)
    assert torch.equal(net(x), ideal)


def test_faults_must_fit_the_layer():
    layer = BinaryLinear(4, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*\(3, 4\)"):
        layer.set_faults(DeviceFaults((2, 2), ber=0.1))
    with pytest.raises(ValueError, match="binary layer needs binary device faults"):
        layer.set_faults(DeviceFaults((3, 4), ber=0.1, kind="ternary"))
    with pytest.raises(ValueError, match="ternary_threshold must be a finite number >= 0"):
        BinaryLinear(4, 3, quantizer="ternary", ternary_threshold=-1)
    with pytest.raises(ValueError, match="ber must be a finite number"):
        BNN((4, 3)).set_read_faults(float("inf"))


def test_metaplastic_adam_trains_a_ternary_network(tmp_path):
    results = run_continual(ContinualConfig(**SMALL, quantizer="ternary", ternary_threshold=0.01), tmp_path / "t",
                            progress=False, log=lambda s: None)
    assert results["mean_final_accuracy"] > 80  # 10 classes: chance is 10%
    run = TrainedRun(tmp_path / "t")
    zero = run.zero_fraction()
    assert 0.0 < zero < 0.9, zero
    assert run.accuracy() == pytest.approx(results["mean_final_accuracy"])


def test_error_aware_training_reads_with_errors_and_is_reproducible(tmp_path):
    plain = run_continual(ContinualConfig(**SMALL), tmp_path / "a", progress=False, log=lambda s: None)
    aware = run_continual(ContinualConfig(**SMALL, train_ber=0.05), tmp_path / "b", progress=False,
                          log=lambda s: None)
    again = run_continual(ContinualConfig(**SMALL, train_ber=0.05), tmp_path / "c", progress=False,
                          log=lambda s: None)
    drop_time = lambda h: [{k: v for k, v in row.items() if k != "train_seconds"} for row in h]  # noqa: E731
    assert drop_time(aware["history"]) != drop_time(plain["history"])
    assert drop_time(aware["history"]) == drop_time(again["history"])  # the training faults are seeded
    assert aware["config"]["train_ber"] == 0.05


def test_level_at_loss_interpolates_in_log_level():
    levels = [0, 1e-3, 1e-2, 1e-1]
    assert level_at_loss(levels, [90, 89.5, 89.5, 80]) == pytest.approx(10 ** (-2 + 0.5 / 9.5))
    assert level_at_loss(levels, [90, 89.9, 89.5, 89.1]) is None
    assert level_at_loss(levels, [90, 85, 80, 70]) == 1e-3
    with pytest.raises(ValueError):
        level_at_loss([1e-3, 1e-2], [90, 80])


def test_robustness_sweep_writes_results_and_refuses_to_overwrite(tmp_path):
    run_continual(ContinualConfig(**SMALL), tmp_path / "bin", progress=False, log=lambda s: None)
    run_continual(ContinualConfig(**SMALL, quantizer="ternary", ternary_threshold=0.01), tmp_path / "ter",
                  progress=False, log=lambda s: None)
    config = RobustnessConfig(levels=[0, 0.01, 0.5], draws=2)
    results = run_robustness([tmp_path / "bin", tmp_path / "ter"], tmp_path / "rob", config, progress=False,
                             log=lambda s: None)
    saved = json.loads((tmp_path / "rob" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for entry in results["runs"]:
        for mode in ("transient", "frozen"):
            c = entry["curves"][mode]
            assert c["mean"][0] == pytest.approx(entry["accuracy_at_training"])  # level 0: the ideal chip
            assert c["std"][0] == 0
            assert len(c["draws"][1]) == 2
        # Binary at BER 0.5: every weight a coin flip, so chance accuracy (digits: 10 classes).
        if entry["quantizer"] == "binary":
            assert entry["curves"]["transient"]["mean"][2] < 30
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 10_000
    csv = (tmp_path / "rob" / "robustness.csv").read_text().splitlines()
    assert len(csv) == 1 + 2 * 2 * 3
    with pytest.raises(ValueError, match='already'):
        run_robustness([tmp_path / "bin"], tmp_path / "rob", config, progress=False, log=lambda s: None)


def test_robustness_cli_sigma_sweep(tmp_path, capsys):
    run_continual(ContinualConfig(**SMALL), tmp_path / "bin", progress=False, log=lambda s: None)
    code = main(["robustness", str(tmp_path / "bin"), "--sweep", "sigma", "--levels", "0", "0.3", "--draws", "2",
                 "--modes", "frozen", "--out", str(tmp_path / "rob"), "--no-progress"])
    assert code == 0
    saved = json.loads((tmp_path / "rob" / "results.json").read_text())
    assert saved["config"]["sweep"] == "sigma" and list(saved["runs"][0]["curves"]) == ["frozen"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.usefixtures("no_lava_leftovers")
def test_robustness_of_a_graph_file_on_lava_and_torch(tmp_path):
    from pathlib import Path

    graph = Path(__file__).resolve().parent.parent / "processes" / "deploy_bnn.toml"
    config = RobustnessConfig(levels=[0, 0.05, 0.5], draws=2, test_limit=100)
    logs = []
    torch_res = run_robustness([graph], tmp_path / "t", config, backend="torch", progress=False, log=logs.append)
    lava_res = run_robustness([graph], tmp_path / "l", config, backend="lava", progress=False, log=lambda s: None)
    assert any("frozen" in line and "transient" in line for line in logs)  # the skipped mode is said
    t, lv = torch_res["runs"][0]["curves"], lava_res["runs"][0]["curves"]
    assert list(t) == ["frozen"]
    assert t["frozen"]["draws"] == lv["frozen"]["draws"]  # the same chips on both backends
    assert t["frozen"]["mean"][0] > 60 and t["frozen"]["mean"][2] < 30  # BER 0.5: chance
    with pytest.raises(ValueError, match="graph files take mode 'frozen'"):
        run_robustness([graph], tmp_path / "x", RobustnessConfig(modes=["transient"]), progress=False,
                       log=lambda s: None)


def test_continual_device_is_checked_and_not_part_of_a_runs_identity(tmp_path):
    from lavaplast.experiments.continual import comparable_config

    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        ContinualConfig(**SMALL, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' needs a GPU, but torch sees none"):
            ContinualConfig(**SMALL, device="cuda")
    cpu = ContinualConfig(**SMALL, device="cpu").to_dict()
    assert comparable_config(cpu) == comparable_config(dict(cpu, device="cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_continual_on_cuda_equals_cpu_within_float_tolerance(tmp_path):
    cpu = run_continual(ContinualConfig(**SMALL), tmp_path / "cpu", progress=False, log=lambda s: None)
    gpu = run_continual(ContinualConfig(**SMALL, device="cuda"), tmp_path / "gpu", progress=False, log=lambda s: None)
    # Sign networks amplify rounding differences (a pre-activation near 0 can flip): a few test images may move.
    assert abs(cpu["mean_final_accuracy"] - gpu["mean_final_accuracy"]) < 3.0
    assert abs(cpu["history"][0]["train_loss"] - gpu["history"][0]["train_loss"]) < 0.05
