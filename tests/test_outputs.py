"""Atomic output writers, run folders and the progress-bar decision."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lavaplast import outputs
from lavaplast.outputs import (
    RunFolderError,
    config_differences,
    prepare_run_dir,
    read_json,
    run_folder,
    save_figure,
    save_npz,
    save_torch,
    write_csv,
    write_json,
    write_text,
)
from lavaplast.progress import show_progress


def _strict_json(text):
    def refuse(token):
        raise AssertionError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(outputs.TEMP_SUFFIX)]


def test_json_stores_non_finite_numbers_as_null(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": float("nan"), "b": [1.5, float("inf"), -np.inf],
                                            "c": np.float32(2.5), "d": np.int64(3), "e": np.array([1.0, np.nan]),
                                            "f": (1, 2)})
    data = _strict_json(path.read_text())
    assert data == {"a": None, "b": [1.5, None, None], "c": 2.5, "d": 3, "e": [1.0, None], "f": [1, 2]}


def test_json_refuses_values_it_cannot_hold_and_keeps_the_old_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert _strict_json(path.read_text()) == {"ok": 1}
    assert _leftovers(tmp_path) == []


def test_failed_rename_keeps_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = write_text(tmp_path / "out.txt", "complete old content")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match=f"cannot write {path}"):
        write_text(path, "new content")
    monkeypatch.undo()
    assert path.read_text() == "complete old content"
    assert _leftovers(tmp_path) == []


def test_sigkill_between_write_and_rename_keeps_the_previous_file(tmp_path):
    path = write_json(tmp_path / "results.json", {"epoch": 1})
    script = textwrap.dedent(f"""
        import os, signal
        from lavaplast.outputs import write_json
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        write_json({str(path)!r}, {{"epoch": 2, "big": list(range(100000))}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert _strict_json(path.read_text()) == {"epoch": 1}
    assert len(_leftovers(tmp_path)) == 1  # the killed write's temp file...
    prepare_run_dir(tmp_path, resume=True)
    assert _leftovers(tmp_path) == []  # ...is removed when the folder is used again


def test_npz_torch_csv_and_figure_round_trip(tmp_path):
    import torch
    from matplotlib.figure import Figure

    save_npz(tmp_path / "weights.npz", W1=np.arange(6.0).reshape(2, 3))
    with np.load(tmp_path / "weights.npz") as z:
        assert z["W1"].shape == (2, 3)
    save_torch({"w": torch.ones(3)}, tmp_path / "checkpoint.pt")
    assert torch.load(tmp_path / "checkpoint.pt")["w"].sum().item() == 3
    write_csv(tmp_path / "h.csv", ["a", "b"], [[1, "x,y"]])
    assert (tmp_path / "h.csv").read_text().splitlines() == ["a,b", '1,"x,y"']
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "f.png", "h.csv", "weights.npz"]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_read_json_names_a_truncated_file(tmp_path):
    (tmp_path / "results.json").write_text('{"config": {"a": ')
    with pytest.raises(ValueError, match="results.json cannot be read.*truncated"):
        read_json(tmp_path / "results.json")


def test_config_differences_name_both_values():
    assert config_differences({"lr": 0.1, "a": 1}, {"lr": 0.2, "a": 1, "b": 2}) == [
        "b (absent) saved vs 2 now", "lr 0.1 saved vs 0.2 now"]


def test_a_new_run_refuses_a_folder_holding_a_run(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(RunFolderError, match="already holds a run.*--overwrite"):
        prepare_run_dir(tmp_path)
    prepare_run_dir(tmp_path, resume=True)
    assert (tmp_path / "results.json").exists()


def test_overwrite_removes_only_the_run_outputs(tmp_path):
    for name in ("results.json", "checkpoint.pt", "history.csv", "notes.txt"):
        (tmp_path / name).write_text("old")
    prepare_run_dir(tmp_path, overwrite=True, outputs=("history.csv",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_empty_or_unrelated_folder_is_accepted(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert prepare_run_dir(tmp_path) is None
    assert prepare_run_dir(tmp_path / "a" / "b") == tmp_path / "a"


def test_overwrite_and_resume_exclude_each_other(tmp_path):
    with pytest.raises(ValueError, match="exclude each other"):
        prepare_run_dir(tmp_path, overwrite=True, resume=True)


@pytest.mark.parametrize("below, match", [("", "is an existing file"), ("sub", "cannot create output folder")])
def test_unusable_paths_are_named(tmp_path, below, match):
    (tmp_path / "thing").write_text("x")
    path = tmp_path / "thing" / below if below else tmp_path / "thing"
    with pytest.raises(RunFolderError, match=f"{path}.*{match}|{match}.*{path}"):
        prepare_run_dir(path)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_folder_under_proc_is_refused():
    with pytest.raises(RunFolderError, match="/proc/lavaplast-run"):
        prepare_run_dir("/proc/lavaplast-run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(RunFolderError, match="not writable|cannot create"):
            prepare_run_dir(tmp_path)
        with pytest.raises(RunFolderError, match="cannot create output folder"):
            prepare_run_dir(tmp_path / "run")
    finally:
        tmp_path.chmod(0o755)


def test_a_failed_run_leaves_no_folder_it_created(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with run_folder(tmp_path / "new" / "run"):
            raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError):
        with run_folder(tmp_path):
            raise RuntimeError
    assert tmp_path.is_dir()  # existed before: kept
    with pytest.raises(RuntimeError):
        with run_folder(tmp_path / "kept") as out:
            write_text(out / "partial.txt", "x")
            raise RuntimeError
    assert (tmp_path / "kept" / "partial.txt").exists()  # never deletes what a run wrote


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_bars_only_on_a_terminal_unless_forced():
    assert show_progress(None, _Stream(True)) is True
    assert show_progress(None, _Stream(False)) is False
    assert show_progress(True, _Stream(False)) is True
    assert show_progress(False, _Stream(True)) is False
    assert show_progress(None, object()) is False
