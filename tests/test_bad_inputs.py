"""Every class of bad input gets one clear line (CLI) or a ValueError (API).

The table in ``docs/bad-inputs.md`` is generated from the cases below: each
row is what the user typed and exactly what they see. The test fails when
the document is out of date; regenerate it with

    LAVAPLAST_WRITE_DOCS=1 python -m pytest tests/test_bad_inputs.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from lavaplast.cli import main

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"
PROCESSES = Path(__file__).resolve().parent.parent / "processes"
SMALL = ["--dataset", "digits", "--hidden", "8", "--train-limit", "200", "--test-limit", "100", "--no-progress"]


def _file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder\n")


def _finished_run(tmp: Path) -> None:
    (tmp / "done").mkdir()
    (tmp / "done" / "results.json").write_text('{"config": {}}\n')


def _truncated_checkpoint(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(b"PK\x03\x04truncated")


def _empty_checkpoint(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.pt").write_bytes(b"")


def _bad_graph(tmp: Path) -> None:
    text = (PROCESSES / "spiking_classifier.toml").read_text()
    (tmp / "typo.toml").write_text(text.replace("threshold = 1.0 }", "treshold = 1.0 }", 1))


def _wrong_input(tmp: Path) -> None:
    np.save(tmp / "x.npy", np.zeros((5, 2, 10)))


def _foreign_folder(tmp: Path) -> None:
    (tmp / "other").mkdir()
    (tmp / "other" / "history.csv").write_text("task,epoch\n")


def _truncated_results(tmp: Path) -> None:
    (tmp / "ep").mkdir()
    (tmp / "ep" / "results.json").write_text('{"config": {"dataset": "dig')
    (tmp / "ep" / "weights.npz").write_bytes(b"")


def _empty_grid(tmp: Path) -> None:
    (tmp / "empty.toml").write_text('command = "continual"\n[grid]\nepochs = []\n')


# (what the user typed, setup, pattern the one-line message must match)
CLI_CASES = [
    ("continual --lr inf", None, r"lr must be a finite number > 0, got inf"),
    ("continual --weight-decay inf", None, r"weight_decay must be a finite number >= 0, got inf"),
    ("continual --meta -1", None, r"meta.* must be a finite number >= 0, got -1"),
    ("continual --meta 1 2 3", None, r"meta has 3 values but the network has 2 weight layers"),
    ("continual --hidden 0", None, r"hidden"),
    ("continual --epochs 0", None, r"epochs must be an integer >= 1, got 0"),
    ("continual --train-limit 1", None, r"train_limit"),
    ("continual --test-limit -5", None, r"test_limit must be None or an integer >= 1, got -5"),
    ("continual --protocol split --n-tasks 2", None, r"n_tasks"),
    ("continual --protocol shuffled", None, r"unknown protocol 'shuffled'"),
    ("continual --quantizer quaternary", None, r"unknown quantizer 'quaternary'"),
    ("continual --ternary-threshold -0.1", None, r"ternary_threshold must be a finite number >= 0, got -0.1"),
    ("continual --train-ber 1.5", None, r"ber must be a finite number >= 0 and <= 0.5, got 1.5"),
    ("continual --model fp --quantizer ternary", None, r"need model='bnn'"),
    ("robustness nowhere", None, r"nowhere holds no finished 'lavaplast continual' run"),
    ("robustness nowhere --levels 0 -0.01", None, r"ber must be a finite number >= 0 and <= 0.5, got -0.01"),
    ("robustness nowhere --sweep sigma --levels nan", None, r"sigma must be a finite number >= 0, got nan"),
    ("robustness nowhere --modes stuck", None, r"unknown mode 'stuck'"),
    ("ep mismatch --levels -1", None, r"levels\[0\] must be a finite number >= 0, got -1.0"),
    ("onchip-mismatch --sigma-gain nan", None, r"sigma_gain must be a finite number >= 0, got nan"),
    ("sweep DIR/missing.toml", None, r"sweep file DIR/missing.toml cannot be read"),
    ("sweep DIR/empty.toml (empty grid)", _empty_grid, r"grid.epochs: the list is empty"),
    ("energy DIR/missing.toml", None, r"missing.toml: no such graph file or run folder"),
    ("energy processes/deploy_bnn.toml --constant loihi_synop_pj=-1", None,
     r"energy constant loihi_synop_pj must be a finite number >= 0, got -1.0"),
    ("continual --dataset cifar", None, r"cifar"),
    ("onchip --batch 0", None, r"batch must be an integer >= 1, got 0"),
    ("onchip --lr nan", None, r"lr must be a finite number > 0, got nan"),
    ("onchip --meta 1 2 3", None, r"meta has 3 values but the network has 2 weight layers"),
    ("onchip --neuron lif --steps 2", None, r"T must be > the number of connections \(2\) .* got T=2"),
    ("onchip --neuron lif --rule hebb", None, r"unknown learning rule 'hebb'; expected one of bcm, metaplastic"),
    ("onchip --neuron izhikevich", None, r"unknown neuron 'izhikevich'"),
    ("onchip --protocol sequence --n-tasks 3", None, r"protocol 'sequence' learns MNIST then Fashion-MNIST"),
    ("ep train --lrs nan 0.1", None, r"lrs\[0\] must be a finite number > 0, got nan"),
    ("ep train --lrs 0.1 0.1 0.1", None, r"lrs has 3 values but the network has 2 weight layers"),
    ("ep train --train-limit 0", None, r"train_limit must be None or an integer >= 1, got 0"),
    ("ep train --test-limit -1", None, r"test_limit must be None or an integer >= 1, got -1"),
    ("ep train --beta 0", None, r"beta must be a finite non-zero number, got 0"),
    ("ep train --nudging sideways", None, r"unknown nudging 'sideways'"),
    ("ep sweep --batch 0", None, r"batch must be an integer >= 1, got 0"),
    ("ep sweep --thresholds inf", None, r"threshold.* must be a finite number >= 0, got inf"),
    ("ep binary --epochs 0", None, r"epochs must be an integer >= 1, got 0"),
    ("ep binary --metas nan", None, r"meta.* must be a finite number >= 0, got nan"),
    ("continual --dataset mnist --data-dir DIR/empty", None, r"lavaplast data fetch"),
    ("continual --out DIR/afile", _file, r"afile"),
    ("continual --out /dev/null/run", None, r"/dev/null/run"),
    ("continual --out DIR/done", _finished_run, r"--overwrite"),
    ("continual --resume --out DIR/run (truncated checkpoint.pt)", _truncated_checkpoint, r"checkpoint"),
    ("continual --resume --out DIR/run (empty checkpoint.pt)", _empty_checkpoint, r"checkpoint"),
    ("ep evaluate DIR/other (not an EP run)", _foreign_folder, r"results.json"),
    ("ep evaluate DIR/ep (truncated results.json)", _truncated_results, r"results.json"),
    ("deploy DIR/other --to DIR/g.toml (not a run folder)", _foreign_folder, r"is not a run folder of"),
    ("run DIR/missing.toml", None, r"missing.toml: no such graph file"),
    ("run DIR/typo.toml (a misspelt field)", _bad_graph, r"populations\[0\].params.treshold: unknown field"),
    ("run processes/spiking_classifier.toml --backend torch", None, r"backends: this graph declares lava, snntorch"),
    ("run processes/spiking_classifier.toml --input DIR/x.npy (wrong width)", _wrong_input, r"x.npy"),
]


def _argv(typed: str, tmp: Path) -> list[str]:
    """The argv of a typed command: small settings first (so the typed options win), a scratch --out."""
    typed = re.sub(r"\s*\(.*\)$", "", typed)
    argv = [a.replace("DIR", str(tmp)) for a in typed.split()]
    argv = [str(PROCESSES.parent / a) if a.startswith("processes/") else a for a in argv]
    n_cmd = 2 if argv[0] == "ep" else 1
    cmd, rest = argv[:n_cmd], argv[n_cmd:]
    if cmd in (["ep", "evaluate"], ["deploy"]):
        return argv
    if cmd in (["run"], ["robustness"], ["sweep"], ["energy"], ["onchip-mismatch"], ["ep", "mismatch"]):
        return argv + ["--out", str(tmp / "out")]
    small = list(SMALL) if cmd[-1] in ("continual", "onchip", "train") else SMALL[:-1]
    out = [] if "--out" in rest else ["--out", str(tmp / "out")]
    return cmd + small + rest + out


def _run_cli(typed, setup, tmp_path, capsys) -> tuple[int, str, str]:
    if setup is not None:
        setup(tmp_path)
    code = main(_argv(typed, tmp_path))
    out, err = capsys.readouterr()
    return code, out, err.replace(str(tmp_path), "DIR").replace(str(PROCESSES.parent) + "/", "")


@pytest.mark.parametrize("typed, setup, pattern", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_gets_one_clear_line(typed, setup, pattern, tmp_path, capsys):
    code, _, err = _run_cli(typed, setup, tmp_path, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lavaplast: error: "), err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def _api_cases():
    import torch

    from lavaplast.graph import LavaBinaryMLP
    from lavaplast.proc import BinaryDense
    from lavaplast.reference import MetaplasticAdam, init_local_mlp
    from lavaplast.reference.ep import EPNetwork

    p = torch.nn.Parameter(torch.zeros(3, 2))
    x = np.random.default_rng(0).random((8, 4))
    return [
        ("MetaplasticAdam(params, eps=0)", lambda: MetaplasticAdam([p], eps=0),
         r"eps must be a finite number > 0, got 0"),
        ("MetaplasticAdam([{'params': ..., 'lr': inf}])",
         lambda: MetaplasticAdam([{"params": [p], "lr": float("inf")}]), r"lr must be a finite number >= 0, got inf"),
        ("MetaplasticAdam(params, weight_decay=-1)", lambda: MetaplasticAdam([p], weight_decay=-1),
         r"weight_decay must be a finite number >= 0, got -1"),
        ("EPNetwork([4, 3]).train_batch(x, labels=[2.5, ...])",
         lambda: EPNetwork([4, 3]).train_batch(x, np.full(8, 2.5)), r"got 2.5 at index 0"),
        ("EPNetwork([4, 3]).train_batch(x, labels=[7, ...])",
         lambda: EPNetwork([4, 3]).train_batch(x, np.full(8, 7)), r"0\.\.2, got 7 at index 0"),
        ("EPNetwork([4, 3]).predict(x with a NaN)",
         lambda: EPNetwork([4, 3]).predict(np.where(x > 0.9, np.nan, x)), r"NaN"),
        ("BinaryDense(hidden_weights=w, lr=inf)", lambda: BinaryDense(hidden_weights=np.ones((2, 4)), lr=np.inf),
         r"lr must be a finite number >= 0, got inf"),
        ("BinaryDense(hidden_weights=w, eps=-1)", lambda: BinaryDense(hidden_weights=np.ones((2, 4)), eps=-1.0),
         r"eps must be a finite number > 0, got -1"),
        ("init_local_mlp([4, 3], lr=nan)", lambda: init_local_mlp([4, 3], lr=np.nan),
         r"lr must be a finite number >= 0, got nan"),
        ("LavaBinaryMLP(state).train(x with a NaN, y, order)",
         lambda: LavaBinaryMLP(init_local_mlp([4, 3]), batch=4).train(np.where(x > 0.9, np.nan, x),
                                                                     np.zeros(8, int), np.arange(8)), r"NaN"),
        ("LavaBinaryMLP(state).train(x, labels=[1.5, ...], order)",
         lambda: LavaBinaryMLP(init_local_mlp([4, 3]), batch=4).train(x, np.full(8, 1.5), np.arange(8)),
         r"got 1.5 at index 0"),
    ]


API_IDS = ["MetaplasticAdam eps=0", "MetaplasticAdam group lr=inf", "MetaplasticAdam weight_decay=-1",
           "EPNetwork float labels", "EPNetwork label out of range", "EPNetwork NaN input", "BinaryDense lr=inf",
           "BinaryDense eps=-1", "init_local_mlp lr=nan", "LavaBinaryMLP NaN input", "LavaBinaryMLP float labels"]


@pytest.mark.parametrize("index", range(len(API_IDS)), ids=API_IDS)
def test_api_bad_input_raises_value_error(index):
    typed, call, pattern = _api_cases()[index]
    with pytest.raises(ValueError, match=pattern):
        call()


def _table(tmp_root: Path) -> str:
    rows = ["# Bad input: what the user sees", "",
            "Generated by `tests/test_bad_inputs.py` (which fails when this page is out of date;",
            "`LAVAPLAST_WRITE_DOCS=1 python -m pytest tests/test_bad_inputs.py` rewrites it). Every",
            "command exits with status 2 after printing the one line shown; `DIR` is a scratch folder.",
            "Small settings (`--dataset digits --hidden 8 ...`) are added to the training commands.",
            "", "## Command line", "", "| `lavaplast ...` | what the user sees |", "|---|---|"]
    from io import StringIO
    import contextlib

    for i, (typed, setup, _) in enumerate(CLI_CASES):
        tmp = tmp_root / f"cli{i}"
        tmp.mkdir()
        if setup is not None:
            setup(tmp)
        err = StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(StringIO()):
            main(_argv(typed, tmp))
        line = err.getvalue().strip().replace(str(tmp), "DIR").replace(str(PROCESSES.parent) + "/", "")
        rows.append(f"| `{typed}` | `` {line} `` |")
    rows += ["", "## Python API", "", "| call | exception |", "|---|---|"]
    for typed, call, _ in _api_cases():
        try:
            call()
            seen = "(no error)"
        except ValueError as e:
            seen = f"ValueError: {e}"
        rows.append(f"| `{typed}` | `` {seen} `` |")
    return "\n".join(rows) + "\n"


def test_bad_input_table_is_up_to_date(tmp_path):
    text = _table(tmp_path)
    if os.environ.get("LAVAPLAST_WRITE_DOCS"):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    assert DOC.exists(), "run LAVAPLAST_WRITE_DOCS=1 python -m pytest tests/test_bad_inputs.py"
    assert DOC.read_text() == text, "docs/bad-inputs.md is out of date: rerun with LAVAPLAST_WRITE_DOCS=1"
