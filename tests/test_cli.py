"""The command line: run folders, one-line errors, progress bars (small real data: digits)."""

import json
import os
import subprocess
import sys

import pytest

from lavaplast.cli import main as cli

CONTINUAL = ["continual", "--dataset", "digits", "--n-tasks", "2", "--hidden", "16", "--epochs", "1",
             "--batch-size", "50", "--lr", "0.02"]
EP_TRAIN = ["ep", "train", "--dataset", "digits", "--hidden", "16", "--T1", "5", "--T2", "2", "--epochs", "1",
            "--train-limit", "300", "--test-limit", "100"]


def _fails(capsys, argv, *needles):
    """Run the CLI, expect exit 2 and exactly one stderr line naming ``needles``; return that line."""
    code = cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lavaplast: error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def _ok(capsys, argv):
    code = cli(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


# --- run folders ------------------------------------------------------------------


def test_continual_refuses_a_run_folder_then_overwrites_or_resumes_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    _ok(capsys, [*CONTINUAL, "--out", out])
    line = _fails(capsys, [*CONTINUAL, "--out", out], out, "already holds a run", "--overwrite", "--resume")
    assert "results.json" in line
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    stdout, _ = _ok(capsys, [*CONTINUAL, "--out", out, "--resume"])
    assert "finished" in stdout and "final accuracy per task" in stdout
    assert "task 1/2" not in stdout  # nothing retrained
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == first
    stdout, _ = _ok(capsys, [*CONTINUAL, "--lr", "0.01", "--out", out, "--overwrite"])
    assert "task 1/2" in stdout
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["lr"] == 0.01


def test_resume_with_no_checkpoint_starts_fresh_with_a_notice(tmp_path, capsys):
    stdout, _ = _ok(capsys, [*CONTINUAL, "--out", str(tmp_path / "run"), "--resume"])
    assert "no checkpoint.pt" in stdout and "starting a fresh run" in stdout
    assert (tmp_path / "run" / "results.json").exists()


def test_resume_accepts_equivalent_settings_and_names_different_ones(tmp_path, capsys):
    from lavaplast.data import data_dir

    out = tmp_path / "run"
    _ok(capsys, [*CONTINUAL, "--hidden", "16", "16", "--meta", "0", "--out", str(out)])
    (out / "results.json").unlink()  # as if stopped before the end
    _ok(capsys, [*CONTINUAL, "--hidden", "16", "16", "--meta", "0", "0", "0", "--data-dir", str(data_dir()),
                 "--out", str(out), "--resume"])
    (out / "results.json").unlink()
    _fails(capsys, [*CONTINUAL, "--hidden", "16", "16", "--lr", "0.01", "--out", str(out), "--resume"],
           "another config", "lr 0.02 saved vs 0.01 now")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated"])
def test_a_damaged_checkpoint_on_resume_is_one_line(tmp_path, capsys, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    _fails(capsys, [*CONTINUAL, "--out", str(tmp_path), "--resume"], str(tmp_path / "checkpoint.pt"), "truncated")


def test_a_truncated_real_checkpoint_on_resume_is_one_line(tmp_path, capsys):
    _ok(capsys, [*CONTINUAL, "--out", str(tmp_path)])
    (tmp_path / "results.json").unlink()
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    _fails(capsys, [*CONTINUAL, "--out", str(tmp_path), "--resume"], str(ckpt), "cannot be read")


def test_ep_train_refuses_a_run_folder_unless_overwrite(tmp_path, capsys):
    _ok(capsys, [*EP_TRAIN, "--out", str(tmp_path)])
    _fails(capsys, [*EP_TRAIN, "--out", str(tmp_path)], str(tmp_path), "already holds a run", "--overwrite")
    _ok(capsys, [*EP_TRAIN, "--out", str(tmp_path), "--overwrite"])


def test_a_failed_run_leaves_no_folder_behind(tmp_path, capsys):
    out = tmp_path / "runs" / "new"
    _fails(capsys, ["continual", "--dataset", "mnist", "--data-dir", str(tmp_path / "nodata"), "--out", str(out)],
           "lavaplast data fetch")
    _fails(capsys, ["ep", "train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nodata"), "--out", str(out)],
           "lavaplast data fetch")
    assert not (tmp_path / "runs").exists()


# --- unusable --out ------------------------------------------------------------------


@pytest.mark.parametrize("command", [CONTINUAL, EP_TRAIN])
def test_out_that_is_a_file_is_one_line(tmp_path, capsys, command):
    path = tmp_path / "file.txt"
    path.write_text("not a folder")
    _fails(capsys, [*command, "--out", str(path)], str(path), "is an existing file")
    _fails(capsys, [*command, "--out", str(path / "run")], str(path / "run"), "cannot create output folder")
    assert path.read_text() == "not a folder"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_out_under_proc_is_one_line_from_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lavaplast.cli", *CONTINUAL, "--out", "/proc/lavaplast-run"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("lavaplast: error: cannot create output folder /proc/lavaplast-run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_out_in_a_read_only_folder_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _fails(capsys, [*CONTINUAL, "--out", str(locked)], str(locked), "not writable")
        _fails(capsys, [*CONTINUAL, "--out", str(locked / "run")], str(locked / "run"))
    finally:
        locked.chmod(0o755)


def test_an_error_while_writing_outputs_is_one_line(tmp_path, capsys, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("results.json"):
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    _fails(capsys, [*CONTINUAL, "--out", str(tmp_path)], f"cannot write {tmp_path / 'results.json'}",
           "Permission denied")


# --- ep evaluate on folders it cannot use --------------------------------------------


def test_ep_evaluate_refuses_foreign_and_truncated_folders(tmp_path, capsys):
    continual = tmp_path / "continual"
    _ok(capsys, [*CONTINUAL, "--out", str(continual)])
    _fails(capsys, ["ep", "evaluate", str(continual)], str(continual), "weights.npz", "lavaplast ep train")

    run = tmp_path / "ep"
    _ok(capsys, [*EP_TRAIN, "--out", str(run)])
    results, weights = (run / "results.json").read_bytes(), (run / "weights.npz").read_bytes()

    (run / "results.json").write_bytes(results[: len(results) // 2])
    _fails(capsys, ["ep", "evaluate", str(run)], str(run / "results.json"), "truncated")
    (run / "results.json").write_bytes(b"")
    _fails(capsys, ["ep", "evaluate", str(run)], str(run / "results.json"), "truncated")

    (run / "results.json").write_bytes((continual / "results.json").read_bytes())
    _fails(capsys, ["ep", "evaluate", str(run)], str(run / "results.json"), "not the results of an EP training run")

    (run / "results.json").write_bytes(results)
    for damaged in (weights[: len(weights) // 2], b""):
        (run / "weights.npz").write_bytes(damaged)
        _fails(capsys, ["ep", "evaluate", str(run)], str(run / "weights.npz"), "truncated")

    (run / "weights.npz").write_bytes(weights)
    stdout, _ = _ok(capsys, ["ep", "evaluate", str(run)])
    assert "test accuracy" in stdout


# --- argument checks of ep sweep and ep binary -----------------------------------------


@pytest.mark.parametrize("argv, needles", [
    (["ep", "sweep", "--batch", "0"], ["batch", "got 0"]),
    (["ep", "sweep", "--lrs", "nan", "0.1"], ["lrs[0]", "finite", "nan"]),
    (["ep", "sweep", "--thresholds", "0", "inf"], ["thresholds[1]", "finite", "inf"]),
    (["ep", "sweep", "--thresholds", "-0.1"], ["thresholds[0]", ">= 0", "-0.1"]),
    (["ep", "sweep", "--T1", "0"], ["T1", "got 0"]),
    (["ep", "binary", "--epochs", "0"], ["epochs", "got 0"]),
    (["ep", "binary", "--metas", "nan"], ["metas[0]", "nan"]),
    (["ep", "binary", "--lr", "-1"], ["lr", "-1"]),
    (["ep", "binary", "--train-limit", "0"], ["train_limit", "got 0"]),
])
def test_bad_sweep_and_binary_arguments_are_one_line(tmp_path, capsys, argv, needles):
    _fails(capsys, [*argv, "--out", str(tmp_path / "run")], *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["ep", "sweep"], ["ep", "binary"]])
def test_sweep_and_binary_read_data_from_data_dir(tmp_path, capsys, command):
    nodata = tmp_path / "nodata"
    _fails(capsys, [*command, "--dataset", "mnist", "--data-dir", str(nodata), "--out", str(tmp_path / "run")],
           str(nodata / "mnist"), "lavaplast data fetch")
    assert not (tmp_path / "run").exists()


def test_ep_binary_refuses_a_run_folder_unless_overwrite(tmp_path, capsys):
    argv = ["ep", "binary", "--dataset", "digits", "--metas", "0", "--hidden", "16", "--epochs", "1",
            "--train-limit", "200", "--test-limit", "100", "--out", str(tmp_path)]
    stdout, _ = _ok(capsys, argv)
    assert "m = 0: final accuracy per task" in stdout
    _fails(capsys, argv, str(tmp_path), "already holds a run")
    _ok(capsys, [*argv, "--overwrite"])


# --- progress bars ------------------------------------------------------------------------


def test_no_progress_bars_when_stderr_is_not_a_terminal_unless_forced(tmp_path, capsys):
    _, err = _ok(capsys, [*CONTINUAL, "--out", str(tmp_path / "a")])
    assert err == ""
    _, err = _ok(capsys, [*CONTINUAL, "--out", str(tmp_path / "b"), "--progress"])
    assert "task 1/2 epoch 1/1" in err
    _, err = _ok(capsys, [*EP_TRAIN, "--out", str(tmp_path / "c")])
    assert err == ""
    _, err = _ok(capsys, [*EP_TRAIN, "--out", str(tmp_path / "d"), "--progress"])
    assert "EP epoch 1/1" in err


def test_progress_and_no_progress_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli([*CONTINUAL, "--out", str(tmp_path), "--progress", "--no-progress"])
    assert exit_.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_a_progress_bar_drawn_before_lava_is_imported_does_not_break_its_import():
    # Lava sets the multiprocessing start method when imported; a bar must not have fixed it already.
    import subprocess
    import sys

    code = ("from lavaplast.progress import progress_bar\n"
            "list(progress_bar(range(3), True))\n"
            "import lava.magma.runtime.message_infrastructure.multiprocessing\n"
            "print('imported')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
