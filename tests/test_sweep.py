"""lavaplast sweep: file checks, the local and Ray executors, kill and restart, the report."""

import importlib.util
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lavaplast.cli import main as cli
from lavaplast.experiments.sweep import MARKER, run_sweep
from lavaplast.experiments.sweep_file import load_sweep
from lavaplast.experiments.sweep_report import sweep_report

REPO = Path(__file__).resolve().parents[1]

# Four tiny continual runs (2 learning rates x 2 seeds) on the 8x8 digits: a few seconds each.
TINY = """
command = "continual"
seeds = [0, 1]

[options]
dataset = "digits"
n-tasks = 2
hidden = [16]
batch-size = 50
test-limit = 200

[grid]
lr = [0.005, 0.05]
"""


def _results(folder: Path) -> dict:
    """key -> what a run computed (its timings left out)."""
    out = {}
    for run in sorted((folder / "runs").iterdir()):
        r = json.loads((run / "results.json").read_text())
        out[run.name] = dict(final=r["final_accuracy"], shared=r["final_accuracy_shared_bn"],
                             history=[(h["acc"], h["acc_shared_bn"], h["train_loss"]) for h in r["history"]])
    return out


def _sweep_children(out: Path) -> list:
    """Live processes whose command line names the sweep folder (its runs)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and str(out) in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweepfile") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def killed_and_restarted(tiny_file, tmp_path_factory):
    """The tiny sweep on the local executor, SIGTERM'd after 2 runs completed, then started again."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    cmd = [sys.executable, "-m", "lavaplast.cli", "sweep", str(tiny_file), "--out", str(out), "--max-parallel", "1",
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = [m for m in out.glob(f"runs/*/{MARKER}") if json.loads(m.read_text())["status"] == "complete"]
        if len(done) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[0]
    first = json.loads((out / "sweep.json").read_text())
    strays = _sweep_children(out)
    restarted = run_sweep(tiny_file, out, max_parallel=2, progress=False)
    return dict(out=out, exit_code=proc.returncode, log=log, first=first, strays=strays, second=restarted)


def test_a_sweep_killed_after_two_runs_restarts_only_the_missing_ones(killed_and_restarted):
    k = killed_and_restarted
    assert k["exit_code"] == 128 + signal.SIGTERM, k["log"]
    assert "lavaplast: terminated by SIGTERM" in k["log"]
    assert k["strays"] == []  # the run in flight was stopped with the sweep
    first = k["first"]
    assert first["status"] == "interrupted"
    c = first["counts"]
    assert (c["total"], c["skipped"], c["executed"], c["succeeded"], c["failed"]) == (4, 0, 2, 2, 0)
    assert c["interrupted"] + c["not_started"] == 2
    assert sum(r["status"] == "complete" for r in first["runs"]) == 2
    second = k["second"]
    c = second["counts"]
    assert (c["total"], c["skipped"], c["executed"], c["succeeded"], c["failed"], c["interrupted"],
            c["not_started"]) == (4, 2, 2, 2, 0, 0, 0)
    assert second["status"] == "complete"
    # The two runs done before the kill were not done again: each log has one start line.
    for run in first["runs"]:
        starts = (k["out"] / run["folder"] / "sweep_run.log").read_text().count("\n=== ")
        assert starts == (1 if run["status"] == "complete" else 2 if run["status"] == "interrupted" else 1)
    for run in second["runs"]:
        marker = json.loads((k["out"] / run["folder"] / MARKER).read_text())
        assert marker["status"] == "complete" and marker["exit_code"] == 0 and marker["config"] == run["config"]
        assert marker["command_line"].startswith("lavaplast continual --n-tasks 2 --dataset digits --hidden 16")


def test_a_complete_sweep_started_again_runs_nothing(killed_and_restarted, tiny_file, capsys):
    out = killed_and_restarted["out"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/results.json")}
    assert cli(["sweep", str(tiny_file), "--out", str(out)]) == 0
    assert "4 already complete, 0 to run" in capsys.readouterr().out
    c = json.loads((out / "sweep.json").read_text())["counts"]
    assert (c["skipped"], c["executed"]) == (4, 0)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/results.json")} == before


def test_ray_gives_the_results_of_the_local_executor_and_lava_runs_in_ray_workers(
        killed_and_restarted, tiny_file, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        result = run_sweep(tiny_file, out, executor="ray", progress=False)
        assert result["counts"]["executed"] == 4 and result["status"] == "complete"
        local = _results(killed_and_restarted["out"])
        assert len(local) == 4
        assert _results(out) == local  # same folders (same config hashes), same numbers
        # Lava inside a Ray worker: a tiny graph on the lava backend, and a run that fails next to it.
        graph = tmp_path / "graph.toml"
        graph.write_text(f'command = "run"\n[options]\ngraph = "{REPO}/processes/spiking_classifier.toml"\n'
                         'samples = 10\n[grid]\nbackend = ["lava", "nope"]\n')
        result = run_sweep(graph, tmp_path / "graph", executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert result["status"] == "failed"
    assert (result["counts"]["executed"], result["counts"]["failed"]) == (2, 1)
    ok, bad = result["runs"]
    assert ok["status"] == "complete"
    lava = json.loads((tmp_path / "graph" / ok["folder"] / "results.json").read_text())
    assert lava["backend"] == "lava" and lava["samples"] == 10 and lava["counts"]["hidden"] > 0
    assert bad["status"] == "failed" and bad["exit_code"] == 2 and "nope" in bad["error"]


# --- the report --------------------------------------------------------------------------------------


def test_report_means_and_stds_equal_a_hand_computation(killed_and_restarted, tmp_path):
    out = killed_and_restarted["out"]
    report = sweep_report(out, tmp_path)
    assert [p.name for p in report["files"]] == ["report.csv", "report.md", "report_accuracy.png"]
    by_lr: dict = {}
    for run in (out / "runs").iterdir():
        r = json.loads((run / "results.json").read_text())
        by_lr.setdefault(r["config"]["lr"], []).append(r)
    assert report["varying"] == ["lr"]
    rows = {row["options"]["lr"]: row for row in report["rows"]}
    assert set(rows) == set(by_lr) == {0.005, 0.05}
    for lr, runs in by_lr.items():
        assert rows[lr]["seeds"] == [0, 1]
        stats = rows[lr]["stats"]
        for name, values in [("mean final accuracy", [r["mean_final_accuracy"] for r in runs]),
                             ("shared BN: pDigits-1", [r["final_accuracy_shared_bn"][0] for r in runs]),
                             ("per-task BN: pDigits-2", [r["final_accuracy_task_bn"][1] for r in runs])]:
            mean, std, n = stats[name]
            assert n == 2
            assert mean == pytest.approx(statistics.mean(values), abs=1e-12)
            assert std == pytest.approx(statistics.stdev(values), abs=1e-12)
    csv_rows = (tmp_path / "report.csv").read_text().splitlines()
    header = csv_rows[0].split(",")
    line = dict(zip(header, csv_rows[1].split(",")))
    lr = float(line["lr"])
    values = [r["mean_final_accuracy"] for r in by_lr[lr]]
    assert float(line["mean final accuracy mean"]) == pytest.approx(statistics.mean(values), abs=1e-12)
    assert float(line["mean final accuracy std"]) == pytest.approx(statistics.stdev(values), abs=1e-12)
    assert "| lr | seeds | mean final accuracy |" in (tmp_path / "report.md").read_text()


def test_report_of_event_sweeps_averages_each_threshold(tmp_path):
    # A sweep folder written by hand: 'ep sweep' results of 3 seeds of one config, one seed of another.
    runs, values = [], {}
    for i, (hidden, seed, acc, events) in enumerate([(500, 0, 90.0, 800.0), (500, 1, 91.0, 820.0),
                                                     (500, 2, 95.5, 790.0), (100, 0, 80.0, 300.0)]):
        config = {"command": "ep sweep", "options": {"hidden": [hidden]}, "seed": seed}
        folder = tmp_path / "runs" / f"r{i}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(dict(reference_test_acc=acc + 1, sweep=[
            dict(threshold=0.01, test_acc=acc, train_events_per_sample=events)])))
        (folder / MARKER).write_text(json.dumps(dict(status="complete", exit_code=0, config=config)))
        runs.append(dict(key=f"r{i}", folder=f"runs/r{i}", config=config, status="complete"))
        values.setdefault(hidden, []).append((acc, events))
    (tmp_path / "sweep.json").write_text(json.dumps(dict(command="ep sweep", runs=runs)))
    report = sweep_report(tmp_path)
    rows = {row["options"]["hidden"][0]: row["stats"] for row in report["rows"]}
    acc = [a for a, _ in values[500]]
    assert rows[500]["accuracy @ threshold 0.01"] == pytest.approx(
        (statistics.mean(acc), statistics.stdev(acc), 3), abs=1e-12)
    assert rows[500]["messages per training sample @ threshold 0.01"][:2] == pytest.approx((803.3333333333334,
                                                                                             15.275252316519467))
    assert rows[100]["accuracy @ threshold 0.01"] == (80.0, None, 1)  # one seed: no std
    assert rows[100]["reference test accuracy"] == (81.0, None, 1)
    assert "| 500 | 0 1 2 | 93.17 +- 2.93 | 92.17 +- 2.93 | 803.33 +- 15.28 |" in report["markdown"]
    assert (tmp_path / "report_accuracy_vs_messages.png").is_file()


def test_report_of_event_sweeps_tested_every_epoch(tmp_path):
    # Two seeds tested after each of 3 epochs: best epochs, reductions and the per-epoch panel.
    runs = []
    for seed, (ref, acc, events) in enumerate([([90.0, 92.0, 91.0], [89.0, 91.5, 92.5], 700.0),
                                              ([91.0, 93.0, 92.0], [90.0, 92.5, 91.5], 760.0)]):
        config = {"command": "ep sweep", "options": {"hidden": [40]}, "seed": seed}
        folder = tmp_path / "runs" / f"r{seed}"
        folder.mkdir(parents=True)
        history = [dict(epoch=e + 1, test_acc=a, train_events_per_sample=events) for e, a in enumerate(acc)]
        (folder / "results.json").write_text(json.dumps(dict(
            reference_test_acc=ref[-1], reference_history=[dict(epoch=e + 1, test_acc=a) for e, a in enumerate(ref)],
            sweep=[dict(threshold=0.01, test_acc=acc[-1], train_events_per_sample=events,
                        train_reduction=26520 / events, history=history)])))
        (folder / MARKER).write_text(json.dumps(dict(status="complete", exit_code=0, config=config)))
        runs.append(dict(key=f"r{seed}", folder=f"runs/r{seed}", config=config, status="complete"))
    (tmp_path / "sweep.json").write_text(json.dumps(dict(command="ep sweep", runs=runs)))
    stats = sweep_report(tmp_path)["rows"][0]["stats"]
    assert stats["reference best epoch accuracy"] == pytest.approx((92.5, statistics.stdev([92.0, 93.0]), 2))
    assert stats["best epoch accuracy @ threshold 0.01"] == pytest.approx((92.5, 0.0, 2))
    assert stats["accuracy @ threshold 0.01"] == pytest.approx((92.0, statistics.stdev([92.5, 91.5]), 2))
    assert stats["fewer messages than dense @ threshold 0.01"][0] == pytest.approx((26520 / 700 + 26520 / 760) / 2)
    from PIL import Image

    with Image.open(tmp_path / "report_accuracy_vs_messages.png") as im:
        assert im.width > 1.5 * im.height  # two panels: the trade-off and the accuracy per epoch


def test_headline_numbers_of_graph_runs_and_robustness_sweeps():
    from lavaplast.experiments.sweep_report import headline

    run = dict(accuracy=55.0, per_sample={"hidden": 12.5, "out": 3.0}, count_kind={"hidden": "spikes"}, seconds=1.5)
    assert headline("run", run) == {"accuracy": 55.0, "hidden: spikes per sample": 12.5,
                                    "out: events per sample": 3.0, "seconds": 1.5}
    rob = dict(config=dict(sweep="ber", levels=[0.0, 0.01]), runs=[dict(label="bnn", curves=dict(
        transient=dict(mean=[97.0, 95.5], level_at_1pt_loss=0.004), frozen=dict(mean=[97.0, 94.0],
                                                                                 level_at_1pt_loss=None)))])
    assert headline("robustness", rob) == {"bnn transient @ ber 0": 97.0, "bnn transient @ ber 0.01": 95.5,
                                           "bnn transient: ber at 1 point lost": 0.004, "bnn frozen @ ber 0": 97.0,
                                           "bnn frozen @ ber 0.01": 94.0}
    with pytest.raises(ValueError, match="results of 'lavaplast ep train' lack 'final_test_accuracy'"):
        headline("ep train", {"best_test_accuracy": 1.0})


def test_report_of_a_folder_without_a_sweep_is_one_line(tmp_path, cli_fails):
    cli_fails(["sweep", "report", str(tmp_path)], "is not a sweep folder", "sweep.json")
    (tmp_path / "sweep.json").write_text('{"runs": [{"key": "x"}]}')
    cli_fails(["sweep", "report", str(tmp_path)], "was not written by 'lavaplast sweep'")
    (tmp_path / "sweep.json").write_text('{"command": "onchip", "runs": []}')
    cli_fails(["sweep", "report", str(tmp_path)], "no run of the sweep", "is complete yet (0 of 0)")


# --- sweep files -------------------------------------------------------------------------------------

GOOD = 'command = "continual"\nseeds = [0]\n'


@pytest.mark.parametrize("text, needles", [
    ('command = "train"\nseeds = [0]\n', ["command: 'train' is not a command a sweep runs", "'ep train'"]),
    ('seeds = [0]\n', ["field 'command' is missing"]),
    ('command = "continual"\n', ["field 'seeds' is missing"]),
    (GOOD + 'colour = 1\n', ["unknown field 'colour'"]),
    (GOOD + '[options]\nepoch = 3\n', ["options.epoch: unknown option 'epoch' of 'lavaplast continual'", "epochs"]),
    (GOOD + '[options]\nepochs = 1.5\n', ["options.epochs: argument --epochs: invalid int value: '1.5'"]),
    (GOOD + '[options]\nepochs = "three"\n', ["options.epochs", "invalid int value: 'three'"]),
    (GOOD + '[options]\nlr = nan\n', ["options.lr: --lr must be a finite number, got nan"]),
    (GOOD + '[options]\nlr = true\n', ["options.lr: --lr takes a number or a string, got the boolean true"]),
    (GOOD + '[options]\nlr = [0.1, 0.2]\n', ["options.lr: --lr takes one value, got the list"]),
    (GOOD + '[options]\njoint = 1\n', ["options.joint: --joint is a flag: give true or false"]),
    (GOOD + '[options]\nhidden = []\n', ["options.hidden: --hidden needs at least one value"]),
    (GOOD + '[options]\nout = "x"\n', ["options.out: 'out' is set by the sweep"]),
    (GOOD + '[options]\nseed = 3\n', ["options.seed", "give the seeds as the top-level field 'seeds'"]),
    (GOOD + '[grid]\n', ["grid: the table is empty"]),
    (GOOD + '[grid]\nmeta = []\n', ["grid.meta: the list is empty, so the grid would hold no run"]),
    (GOOD + '[grid]\nmeta = 1.0\n', ["grid.meta: expected a list of values, got 1.0"]),
    (GOOD + '[grid]\nepochs = [1, "x"]\n', ["grid.epochs[1]: argument --epochs: invalid int value: 'x'"]),
    (GOOD + '[grid]\nmeta = [1.0, 1]\n', ["grid.meta[1]: 1 repeats an earlier value"]),
    (GOOD + '[options]\nlr = 0.1\n[grid]\nlr = [0.2]\n', ["grid.lr: 'lr' is also fixed in [options]"]),
    (GOOD + 'runs = []\n', ["runs: the list is empty"]),
    (GOOD + '[[runs]]\nmeta = 1.0\n[[runs]]\nmetta = 2.0\n', ["runs[1].metta: unknown option 'metta'"]),
    (GOOD + '[[runs]]\nmeta = 1.0\n[[runs]]\nmeta = [1.0]\n', ["runs[1], seed 0: the same run as runs[0], seed 0"]),
    ('command = "continual"\nseeds = [0, -1]\n', ["seeds[1]: expected an integer >= 0, got -1"]),
    ('command = "continual"\nseeds = [2, 2]\n', ["seeds[1]: seed 2 is listed twice"]),
    ('command = "continual"\nseeds = []\n', ["seeds: expected a non-empty list"]),
    (GOOD + '[resources]\nnum_cpus = 0\n', ["resources.num_cpus: expected a finite number > 0, got 0"]),
    (GOOD + '[resources]\ncpus = 2\n', ["resources.cpus: unknown field"]),
    ('command = "run"\nseeds = [0]\n[options]\ngraph = "g.toml"\n', ["seeds: 'lavaplast run' has no --seed"]),
    ('command = "run"\n', ["'graph' is required by 'lavaplast run'; give it in [options]"]),
    ('command = "ep sweep"\nseeds = [0]\n[options]\nthresholds = [0.0, "a"]\n',
     ["options.thresholds: argument --thresholds: invalid float value: 'a'"]),
    ('command = "continual"\nseeds = [0\n', ["is not valid TOML"]),
])
def test_malformed_sweep_files_are_one_line_naming_the_field(tmp_path, cli_fails, text, needles):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    cli_fails(["sweep", str(path), "--out", str(tmp_path / "out")], f"sweep file {path}", *needles)
    assert not (tmp_path / "out").exists()  # refused before anything is made


def test_bad_sweep_command_lines_are_one_line(tmp_path, cli_fails, tiny_file):
    cli_fails(["sweep", str(tmp_path / "missing.toml")], "cannot be read")
    cli_fails(["sweep", str(tiny_file), "--address", "auto"], "--address is an option of the Ray executor")
    cli_fails(["sweep", str(tiny_file), "--max-parallel", "0"], "--max-parallel must be an integer >= 1, got 0")
    cli_fails(["sweep", "report"], "lavaplast sweep report needs the sweep's folder")
    cli_fails(["sweep", str(tiny_file), "x"], "takes one sweep file")
    cli_fails(["sweep", "report", str(tmp_path), "--max-parallel", "2"], "--max-parallel is an option of running")
    if importlib.util.find_spec("ray") is not None:
        cli_fails(["sweep", str(tiny_file), "--executor", "ray", "--address", "127.0.0.1:1", "--out",
                   str(tmp_path / "out")], "--address 127.0.0.1:1: no Ray cluster answers there")
        assert not (tmp_path / "out").exists()


def test_option_spellings_that_mean_the_same_are_the_same_run(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(GOOD + '[options]\nn-tasks = 2\nmeta = 1\njoint = false\nlr = 1\n')
    b.write_text(GOOD + '[options]\nn_tasks = 2\nmeta = [1.0]\nlr = 1.0\n')
    ra, rb = load_sweep(a).runs, load_sweep(b).runs
    assert [r["key"] for r in ra] == [r["key"] for r in rb]
    assert ra[0]["config"] == {"command": "continual", "options": {"n_tasks": 2, "meta": [1.0], "lr": 1.0}, "seed": 0}
    assert ra[0]["words"] == ["continual", "--n-tasks", "2", "--meta", "1.0", "--lr", "1.0", "--seed", "0"]


def test_grid_runs_and_seeds_expand_to_their_product(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('command = "ep train"\nseeds = [0, 1, 2]\n[options]\nhidden = [32]\n'
                    '[grid]\nbeta = [0.1, 0.5]\nbatch = [16, 32]\n'
                    '[[runs]]\nnudging = "symmetric"\n[[runs]]\nnudging = "one-sided"\nlrs = [0.1, 0.05]\n')
    sweep = load_sweep(path)
    assert len(sweep.runs) == 2 * 2 * 2 * 3
    assert len({r["key"] for r in sweep.runs}) == 24
    assert sweep.restart_flag == "--overwrite" and sweep.progress_flag == "--no-progress"
    first = sweep.runs[0]
    assert first["words"][:2] == ["ep", "train"]
    assert first["config"] == {"command": "ep train", "seed": 0,
                               "options": {"hidden": [32], "nudging": "symmetric", "beta": 0.1, "batch": 16}}
    last = sweep.runs[-1]["config"]
    assert last["options"]["lrs"] == [0.1, 0.05] and last["seed"] == 2 and last["options"]["batch"] == 32


def test_robustness_runs_name_their_trained_folders_as_a_positional_option(tmp_path):
    from lavaplast.cli import build_parser
    from lavaplast.experiments.sweep_file import _subparsers

    if "robustness" not in _subparsers(build_parser()):
        pytest.skip("this lavaplast has no 'robustness' command")
    path = tmp_path / "r.toml"
    path.write_text('command = "robustness"\nseeds = [0, 1]\n[options]\nruns = ["runs/a", "runs/b"]\n'
                    'draws = 3\n[grid]\nsweep = ["ber", "sigma"]\n')
    runs = load_sweep(path).runs
    assert len(runs) == 4
    assert runs[0]["words"] == ["robustness", "runs/a", "runs/b", "--sweep", "ber", "--draws", "3", "--seed", "0"]
    path.write_text('command = "robustness"\nseeds = [0]\n[options]\nruns = []\n')
    with pytest.raises(ValueError, match=r"options.runs: runs needs at least one value"):
        load_sweep(path)


def test_gpu_slots_of_the_local_executor():
    from lavaplast.experiments.sweep import gpu_slots

    assert gpu_slots(0, ["0", "1"]) == []
    assert gpu_slots(1, ["0", "1", "2"]) == [["0"], ["1"], ["2"]]
    assert gpu_slots(2, ["0", "1", "2", "3", "4"]) == [["0", "1"], ["2", "3"]]
    assert gpu_slots(0.5, ["3", "5"]) == [["3"], ["3"], ["5"], ["5"]]
    assert gpu_slots(0.4, ["0"]) == [["0"], ["0"]]
    assert gpu_slots(2, ["0"]) == []


def test_runs_that_need_a_gpu_are_refused_where_none_is_visible(tmp_path, cli_fails, monkeypatch):
    path = tmp_path / "g.toml"
    path.write_text(GOOD + '[resources]\nnum_gpus = 1\n')
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    cli_fails(["sweep", str(path), "--out", str(tmp_path / "out")],
              "the runs need 1 GPU(s) each (resources.num_gpus) but 0 are visible here (CUDA_VISIBLE_DEVICES)")
    assert not (tmp_path / "out").exists()
    path.write_text(GOOD + '[resources]\nnum_gpus = 1.5\n')
    cli_fails(["sweep", str(path)], "resources.num_gpus: a run needs a fraction of one GPU or whole GPUs, got 1.5")


# --- shipped sweep files -----------------------------------------------------------------------------

SHIPPED = sorted((REPO / "benchmarks" / "sweeps").glob("*.toml"))


def test_sweep_files_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"pmnist_table", "mnist_fashion_table", "stream_table", "ep_784_500_10",
                                         "onchip_table", "ep_events_full", "paper_scale_pmnist"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_sweep_file_validates_with_seeds_0_1_2(path):
    sweep = load_sweep(path)
    assert sweep.data["seeds"] == [0, 1, 2]
    per_seed = {}
    for r in sweep.runs:
        per_seed.setdefault(r["config"]["seed"], []).append(r)
    assert sorted(per_seed) == [0, 1, 2] and len({len(v) for v in per_seed.values()}) == 1


def test_shipped_sweep_files_use_the_readme_settings():
    def words(stem):
        return [" ".join(r["words"]) for r in load_sweep(REPO / "benchmarks" / "sweeps" / f"{stem}.toml").runs
                if r["config"]["seed"] == 0]

    pm = words("pmnist_table")
    assert len(pm) == 3 and all("--protocol permuted --n-tasks 6 --hidden 1024 1024 --batchnorm batch" in w
                                and "--epochs 3 --batch-size 100 --lr 0.02 --weight-decay 1e-07" in w for w in pm)
    assert sum("--ewc-lambda 5000.0" in w for w in pm) == 1 and sum("--meta 1.35" in w for w in pm) == 1
    seq = words("mnist_fashion_table")
    assert len(seq) == 2 and all("--protocol sequence --datasets mnist fashion-mnist" in w and "--epochs 5" in w
                                 for w in seq)
    st = words("stream_table")
    assert len(st) == 3 and all("--protocol stream --dataset fashion-mnist --n-subsets 60" in w and "--epochs 10"
                                in w and "--lr 0.005" in w and "--eval-every task" in w for w in st)
    assert sum("--joint" in w for w in st) == 1
    assert words("ep_784_500_10") == ["ep train --dataset mnist --hidden 500 --T1 30 --T2 10 --beta 0.5 --nudging "
                                      "symmetric --lrs 0.2 0.1 --batch 32 --epochs 30 --seed 0"]
    oc = words("onchip_table")
    assert len(oc) == 3 and all("onchip --dataset mnist --protocol permuted --n-tasks 3 --hidden 256 256" in w
                                and "--lr 0.02 --epochs 2 --batch 100 --backend both" in w for w in oc)
    assert words("ep_events_full") == ["ep sweep --thresholds 0.01 --dataset mnist --hidden 500 --T1 30 "
                                       "--T2 10 --beta 0.5 --lrs 0.2 0.1 --batch 100 --epochs 15 --train-limit 60000 "
                                       "--test-limit 10000 --seed 0"]
    tw = words("ternary_width")
    assert len(tw) == 12 and all("--n-tasks 1" in w and "--no-permute-first" in w and "--epochs 5" in w for w in tw)
    assert sum("--quantizer binary" in w for w in tw) == 4 and sum("--ternary-threshold 0.1" in w for w in tw) == 4
    paper = words("paper_scale_pmnist")
    assert len(paper) == 6 and all("--hidden 4096 4096" in w and "--n-tasks 6" in w and "--lr 0.005" in w
                                   and "--device cuda" in w for w in paper)
    assert {w.split("--epochs ")[1].split()[0] for w in paper} == {"20", "40"}
    assert {w.split("--meta ")[1].split()[0] for w in paper} == {"0.0", "0.5", "1.35"}
