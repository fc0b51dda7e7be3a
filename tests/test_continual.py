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


# --- run folders, resuming and atomic outputs ---------------------------------

FAST = dict(SMALL, hidden=[32])


def _quiet(**kw):
    return dict(progress=False, log=lambda s: None, **kw)


def test_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint_and_resume_works(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    import torch

    config = ContinualConfig(**FAST)
    full = run_continual(config, tmp_path / "full", **_quiet())
    cut = tmp_path / "cut"
    # SIGKILL (no clean-up possible) after the third checkpoint is written but before it is renamed.
    script = textwrap.dedent(f"""
        import os, signal
        from lavaplast.experiments import ContinualConfig, run_continual
        real, seen = os.replace, []
        def replace(src, dst):
            if str(dst).endswith("checkpoint.pt"):
                seen.append(dst)
                if len(seen) == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = replace
        run_continual(ContinualConfig(**{FAST!r}), {str(cut)!r}, progress=False, log=lambda s: None)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    ckpt = torch.load(cut / "checkpoint.pt", weights_only=False)  # the second checkpoint, complete
    assert (ckpt["task"], ckpt["epoch"], len(ckpt["history"])) == (1, 0, 2)
    assert not (cut / "results.json").exists()
    resumed = run_continual(config, cut, resume=True, **_quiet())
    assert [r["acc"] for r in resumed["history"]] == [r["acc"] for r in full["history"]]
    assert not [p for p in os.listdir(cut) if p.startswith(".")]


def test_failed_results_write_leaves_no_results_and_resume_finishes_the_run(tmp_path, monkeypatch):
    import os

    config = ContinualConfig(**{**FAST, "epochs": 1})
    full = run_continual(config, tmp_path / "full", **_quiet())
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("results.json"):
            raise KeyboardInterrupt  # stopped between writing and renaming
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        run_continual(config, tmp_path / "cut", **_quiet())
    monkeypatch.undo()
    assert not (tmp_path / "cut" / "results.json").exists()
    resumed = run_continual(config, tmp_path / "cut", resume=True, **_quiet())
    assert resumed["final_accuracy"] == full["final_accuracy"]
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["final_accuracy"] == full["final_accuracy"]


def test_a_new_run_refuses_a_finished_run_folder_unless_overwrite(tmp_path):
    config = ContinualConfig(**{**FAST, "epochs": 1})
    run_continual(config, tmp_path, **_quiet())
    with pytest.raises(ValueError, match="already holds a run"):
        run_continual(config, tmp_path, **_quiet())
    (tmp_path / "notes.txt").write_text("kept")
    again = run_continual(ContinualConfig(**{**FAST, "epochs": 1, "lr": 0.01}), tmp_path, overwrite=True, **_quiet())
    assert json.loads((tmp_path / "results.json").read_text())["config"]["lr"] == 0.01 == again["config"]["lr"]
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_resuming_a_finished_run_reports_it_without_training(tmp_path):
    config = ContinualConfig(**{**FAST, "epochs": 1})
    done = run_continual(config, tmp_path, **_quiet())
    stamp = (tmp_path / "checkpoint.pt").stat().st_mtime_ns
    lines = []
    again = run_continual(config, tmp_path, resume=True, progress=False, log=lines.append)
    assert again["final_accuracy"] == done["final_accuracy"]
    assert len(lines) == 1 and "finished" in lines[0]
    assert (tmp_path / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_resume_without_a_checkpoint_says_so_and_starts_fresh(tmp_path):
    lines = []
    res = run_continual(ContinualConfig(**{**FAST, "epochs": 1}), tmp_path / "new", resume=True, progress=False,
                        log=lines.append)
    assert "no checkpoint.pt" in lines[0] and "fresh" in lines[0]
    assert len(res["final_accuracy"]) == 2


def test_resume_accepts_equivalent_configs(tmp_path):
    from lavaplast.data import data_dir

    def stop_at_first(line):
        raise _Stop

    with pytest.raises(_Stop):
        run_continual(ContinualConfig(**{**FAST, "epochs": 1}), tmp_path, progress=False, log=stop_at_first)
    same = ContinualConfig(**{**FAST, "epochs": 1, "meta": [0.0, 0.0], "data_dir": str(data_dir())})
    res = run_continual(same, tmp_path, resume=True, **_quiet())
    assert len(res["history"]) == 2


def test_resume_mismatch_names_each_differing_setting(tmp_path):
    run_continual(ContinualConfig(**{**FAST, "epochs": 1}), tmp_path, **_quiet())
    with pytest.raises(ValueError) as err:
        run_continual(ContinualConfig(**{**FAST, "epochs": 1, "lr": 0.01, "seed": 3}), tmp_path, resume=True,
                      **_quiet())
    message = str(err.value)
    assert "lr 0.02 saved vs 0.01 now" in message and "seed 0 saved vs 3 now" in message
    assert "epochs" not in message and "\n" not in message


def test_a_run_that_fails_on_its_data_leaves_no_folder(tmp_path):
    from lavaplast.data import DataMissingError

    config = ContinualConfig(**{**FAST, "dataset": "mnist", "data_dir": str(tmp_path / "nodata")})
    with pytest.raises(DataMissingError):
        run_continual(config, tmp_path / "runs" / "a", **_quiet())
    assert not (tmp_path / "runs").exists()


def test_plot_returns_a_figure_without_touching_pyplot(tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    from lavaplast.experiments.report import plot_accuracy

    backend = matplotlib.get_backend()
    res = run_continual(ContinualConfig(**{**FAST, "epochs": 1}), tmp_path, **_quiet())
    fig = plot_accuracy(res)
    assert isinstance(fig, Figure) and fig.axes
    assert matplotlib.get_backend() == backend
