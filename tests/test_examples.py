"""The shipped examples run: every code cell of the notebook, and every workload YAML."""

import json
from pathlib import Path

import pytest

import blis

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_capacity_planning_notebook_runs():
    nb = json.loads((EXAMPLES / "capacity_planning.ipynb").read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "capacity_planning.ipynb", "exec"), scope)
    rows = scope["rows"]
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    p99 = [v for _, v in rows]
    assert p99[0] > p99[-1]  # more instances, lower tail TTFT at the same load


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_workloads_simulate(path):
    wl = blis.Workload.from_yaml(path).with_overrides(num_requests=60)
    res = blis.simulate(blis.SimConfig(workload=wl))
    assert res.summary["completed_requests"] + res.summary["rejected_requests"] == 60
