"""vaelab.tooling.capstone: the master's submission read from the notebook, the measurements."""

import json

import nbformat
import pytest
import torch
from helpers import mnist_like
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vaelab import budget, capstone
from vaelab.tooling import capstone as tool
from vaelab.tooling.student import BEGIN, END

EXERCISE = f'''# Exercise 6.1: your own VAE and its training plan
class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.likelihood = Bernoulli()
        {BEGIN}
        self.latent_dim = 2
        self.enc, self.dec = nn.Linear(784, 4), nn.Linear(2, 784)
        {END}

    def encode(self, x):
        return self.enc(x).chunk(2, dim=1)

    def decode(self, z):
        return self.dec(z)


{BEGIN}
PLAN = dict(epochs=1, batch_size=500)
{END}'''


def master(tmp_path, exercise: str = EXERCISE):
    nb = new_notebook(cells=[
        new_markdown_cell("# 06"),
        new_code_cell("from torch import nn\n\nfrom vaelab.decoder_likelihoods import Bernoulli"),
        new_code_cell("raise RuntimeError('a cell that is not only imports never runs')"),
        new_code_cell(exercise),
        new_code_cell("check_tier(MyVAE, PLAN, 1)"),
    ])
    path = tmp_path / "06_your_own_vae.ipynb"
    nbformat.write(nb, path)
    return path


def test_master_submission_runs_the_import_cells_and_the_exercise_cell(tmp_path):
    factory, plan = tool.master_submission(master(tmp_path))
    model = factory()
    assert model.latent_dim == 2 and plan == {"epochs": 1, "batch_size": 500}
    assert capstone.check_model(factory, mnist_like(4)) is not None


def test_master_submission_needs_exercise_6_1(tmp_path):
    path = master(tmp_path, EXERCISE.replace("Exercise 6.1", "Exercise 6.2"))
    with pytest.raises(ValueError, match=r"no Exercise 6\.1"):
        tool.master_submission(path)


def test_measure_grades_both_submissions_and_checks_the_thresholds(tmp_path, monkeypatch):
    score = (torch.rand(20, 784, generator=torch.Generator().manual_seed(0)) * 255
             < mnist_like(20)).float()
    monkeypatch.setattr(capstone, "load_data", lambda seed=0: (mnist_like(600), score))
    monkeypatch.setattr(tool, "binarized_test_set", lambda seed=0, progress=True: (score, None))
    monkeypatch.setattr(capstone, "MLP_PLAN", {"epochs": 1, "batch_size": 300})

    def cost(factory, plan, images, **kwargs):
        steps = plan["epochs"] * budget.steps_per_epoch(plan["batch_size"])
        return budget.PlanCost(steps / 469, steps, 1.0, 469.0)

    monkeypatch.setattr(budget, "plan_cost", cost)
    lines = []
    result = tool.measure(seeds=2, path=master(tmp_path), log=lines.append)
    assert [len(result["runs"][name]) for name in ("reference", "mlp")] == [2, 2]
    rows = [r for runs in result["runs"].values() for r in runs]
    # scored (too little training to learn: tier 0, "learned nothing", but a score)
    assert all(r["nll"] is not None and r["nll"] > 0 for r in rows), rows
    assert set(result["noise"]) == {"reference", "mlp"}
    assert all(len(v) == 5 for n in result["noise"].values() for v in n.values())
    assert "the MLP reaches tier 1 and no higher with every seed" in result["checks"]
    assert any(line.startswith(("PASS", "MISS")) for line in lines)
    json.dumps(result)  # what --out writes
