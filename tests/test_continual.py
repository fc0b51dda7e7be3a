"""Continual-learning runner and CLI on small real data (scikit-learn digits)."""

import json

import pytest

from lavaplast.cli import main as cli
from lavaplast.experiments import ContinualConfig, run_continual

SMALL = dict(protocol="permuted", dataset="digits", n_tasks=2, hidden=[64], epochs=2, batch_size=50,
             eval_batch_size=300, lr=0.02, seed=0)


def test_run_writes_results_csv_plot_and_checkpoint(tmp_path):
    res = run_continual(ContinualConfig(**SMALL), tmp_path, progress=False, log=lambda s: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["final_accuracy"] == res["final_accuracy"]
    assert {"config", "history", "final_accuracy"} <= set(saved)
    assert len(saved["final_accuracy"]) == 2
    assert len(saved["history"]) == 4  # 2 tasks x 2 epochs
    # Task 1 is tested once per epoch from the start, task 2 from its first epoch.
    assert [len(r["acc"]) for r in saved["history"]] == [1, 1, 2, 2]
    assert saved["final_accuracy"][1] > 70.0  # the task just learned
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("task_trained,epoch,tested_task")
    assert len(lines) == 1 + 1 + 1 + 2 + 2
    assert (tmp_path / "accuracy.png").stat().st_size > 5000
    assert (tmp_path / "checkpoint.pt").exists()


class _Stop(Exception):
    pass


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    config = ContinualConfig(**SMALL)
    full = run_continual(config, tmp_path / "full", progress=False, log=lambda s: None)

    seen = []

    def stop_after_three(line):
        seen.append(line)
        if len(seen) == 3:
            raise _Stop

    with pytest.raises(_Stop):
        run_continual(config, tmp_path / "cut", progress=False, log=stop_after_three)
    resumed = run_continual(config, tmp_path / "cut", resume=True, progress=False, log=lambda s: None)
    assert len(resumed["history"]) == 4
    for a, b in zip(full["history"], resumed["history"]):
        assert a["acc"] == b["acc"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-9)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    run_continual(ContinualConfig(**{**SMALL, "epochs": 1}), tmp_path, progress=False, log=lambda s: None)
    with pytest.raises(ValueError, match="another config"):
        run_continual(ContinualConfig(**{**SMALL, "epochs": 1, "lr": 0.01}), tmp_path, resume=True,
                      progress=False, log=lambda s: None)


def test_metaplasticity_retains_first_task_better_than_plain_bnn(tmp_path):
    base = dict(SMALL, hidden=[256], epochs=3, n_tasks=2, lr=0.02)
    plain = run_continual(ContinualConfig(**base, meta=0.0), tmp_path / "m0", progress=False, log=lambda s: None)
    meta = run_continual(ContinualConfig(**base, meta=4.0), tmp_path / "m4", progress=False, log=lambda s: None)
    # Same seed, same data order: the only difference is the rule.
    assert meta["final_accuracy"][0] > plain["final_accuracy"][0] + 5.0
    assert meta["final_accuracy"][1] > 70.0


def test_ewc_and_joint_and_per_layer_meta_run(tmp_path):
    ewc = run_continual(ContinualConfig(**{**SMALL, "epochs": 1}, ewc_lambda=100.0, fisher_batches=5),
                        tmp_path / "ewc", progress=False, log=lambda s: None)
    assert len(ewc["final_accuracy"]) == 2
    joint = run_continual(ContinualConfig(**{**SMALL, "epochs": 1}, joint=True), tmp_path / "joint",
                          progress=False, log=lambda s: None)
    assert len(joint["history"]) == 1 and len(joint["final_accuracy"]) == 2
    layered = run_continual(ContinualConfig(**{**SMALL, "epochs": 1}, meta=[1.0, 0.0]), tmp_path / "layers",
                            progress=False, log=lambda s: None)
    assert layered["config"]["meta"] == [1.0, 0.0]


@pytest.mark.parametrize("changes, match", [
    (dict(protocol="rotated"), "unknown protocol 'rotated'"),
    (dict(meta=-1.0), "meta"),
    (dict(meta=[1.0, 2.0, 3.0]), "3 values but the network has 2 weight layers"),
    (dict(epochs=0), "epochs"),
    (dict(hidden=[]), "hidden"),
    (dict(lr=0.0), "lr"),
])
def test_bad_config_is_rejected(changes, match):
    with pytest.raises(ValueError, match=match):
        ContinualConfig(**{**SMALL, **changes})


@pytest.mark.parametrize("argv, message", [
    (["--protocol", "rotated"], "unknown protocol 'rotated'"),
    (["--meta", "-1"], "meta must be a finite number >= 0"),
    (["--meta", "1", "2", "3"], "3 values but the network has 2 weight layers"),
])
def test_cli_reports_bad_input_clearly(argv, message, tmp_path, capsys):
    code = cli(["continual", "--dataset", "digits", "--hidden", "16", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_cli_names_the_fetch_command_when_data_is_missing(tmp_path, capsys):
    code = cli(["continual", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "lavaplast data fetch" in err


def test_cli_runs_a_small_protocol(tmp_path, capsys):
    code = cli(["continual", "--dataset", "digits", "--n-tasks", "2", "--hidden", "32", "--epochs", "1",
                "--batch-size", "50", "--lr", "0.02", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "final accuracy per task" in capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert len(res["final_accuracy"]) == 2


def test_stream_protocol_tests_the_shared_test_set_once_per_task(tmp_path):
    config = ContinualConfig(protocol="stream", dataset="digits", n_subsets=3, hidden=[64], epochs=2,
                             batch_size=50, lr=0.02, eval_every="task")
    res = run_continual(config, tmp_path, progress=False, log=lambda s: None)
    assert [r["task"] for r in res["history"]] == [1, 2, 3]
    assert all(len(r["acc"]) == 1 for r in res["history"])
    assert res["final_accuracy"][0] > 60.0
    with pytest.raises(ValueError, match="eval_every"):
        ContinualConfig(eval_every="batch")
