"""The tutorials run from top to bottom, and every figure they draw is displayed."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# A cell that draws with pyplot or displays a Figure must show an image.
DRAWS = re.compile(r"\bplt\.(plot|subplots|figure|show|imshow)\b|\bplot_\w+\(")


def _has_image(cell) -> bool:
    return any(o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})
               for o in cell.get("outputs", []))


@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    # Run in a scratch folder so the notebook's outputs stay out of the repository.
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in code for o in c.get("outputs", []))
    expected = {"01_metaplastic_lava.ipynb": "same predictions: True",
                "02_event_driven_ep.ipynb": "largest difference along the free phase",
                "03_spiking_vs_rate.ipynb": "differing spikes: 0",
                "04_write_a_rule.ipynb": "same predictions: True",
                "05_devices.ipynb": "same logits on Lava and torch: True"}
    assert expected[path.name] in text
    drawing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and DRAWS.search(c.source)]
    assert drawing, "each tutorial draws figures"
    blank = [i for i in drawing if not _has_image(nb.cells[i])]
    # Experiments run earlier in a notebook must not switch matplotlib away from inline display.
    assert not blank, f"cells {blank} draw a figure but display no image"
