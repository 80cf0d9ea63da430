"""Notebook 06 (the capstone) under the real graders: four simulated students and their tiers.

Exercise 6.1 is graded in three steps, one check cell (and one point) per tier. The students:

- ``correct``: the master's model and plan, which reach the top tier: 3 points;
- ``untouched``: the release as it was handed out: 0;
- ``does_not_train``: layers made inside ``encode`` and ``decode`` instead of ``__init__``,
  so the model has nothing to train: refused with a message, 0;
- ``mlp_copy``: notebook 04's MLP written out again, with notebook 04's recipe: it trains
  within the budget and is scored, and beats nothing: tier 1, 1 point.

nbgrader (``generate_assignment``, ``autograde``) and otter (``otter assign``, ``otter
run``) grade the four with ``VAELAB_GRADING=1``: every graded run trains its student's
model from scratch with a seed drawn when it grades. Cost: the two students that train,
twice (once per grader), each about a budget's training plus scoring.
"""

from __future__ import annotations

import json
import re
import shutil

import nbformat
import pytest
from test_graders import BIN, NOTEBOOKS, _nbgrader_scores, _read, _run

from vaelab.tooling.assign import answer_strings, leaks
from vaelab.tooling.assign import main as assign_main
from vaelab.tooling.student import BEGIN, END, find_exercises

pytestmark = pytest.mark.slow

STEM = "06_your_own_vae"
EXPECTED = {"correct": 3, "untouched": 0, "does_not_train": 0, "mlp_copy": 1}
HEADER = "# Exercise 6.1: your own VAE and its training plan\n"
DOES_NOT_TRAIN = HEADER + '''class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.likelihood = Bernoulli()
        self.latent_dim = 20

    def encode(self, x):
        return nn.Linear(784, 40)(x).chunk(2, dim=1)  # a new layer at every call

    def decode(self, z):
        return nn.Linear(20, 784)(z)


PLAN = dict(epochs=10)
'''
MLP_COPY = HEADER + '''class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.likelihood = Bernoulli()
        self.latent_dim = 20
        self.encoder = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 40))
        self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

    def encode(self, x):
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z):
        return self.decoder(z)


PLAN = dict(epochs=24, batch_size=128, lr=3e-3, lr_schedule="cosine")
'''


def _solved(master: nbformat.NotebookNode) -> str:
    """The master's exercise cell with its solutions in place and the markers dropped."""
    (exercise,) = find_exercises(master)
    lines = master.cells[exercise.cell_index].source.split("\n")
    return "\n".join(line for line in lines if line.strip() not in (BEGIN, END))


def submissions(release: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The four students' notebooks, built from the release they were handed."""
    sources = {"correct": _solved(_read(NOTEBOOKS / f"{STEM}.ipynb")),
               "does_not_train": DOES_NOT_TRAIN, "mlp_copy": MLP_COPY}
    subs = {"untouched": release}
    for student, source in sources.items():
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        cell = next(c for c in nb.cells if c.cell_type == "code"
                    and re.search(r"^# Exercise 6\.1:", c.source, re.MULTILINE))
        cell.source = source
        subs[student] = nb
    return subs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assign")
    assert assign_main(["--out", str(out), str(NOTEBOOKS / f"{STEM}.ipynb")]) == 0
    return out


def _no_answer_in(paths) -> None:
    answers = answer_strings(_read(NOTEBOOKS / f"{STEM}.ipynb"))
    for path in paths:
        assert leaks(path.read_text(encoding="utf-8"), answers) == [], path


def test_nbgrader_gives_each_student_the_tiers_reached(built):
    course = built / "nbgrader"
    _run([str(BIN / "nbgrader"), "generate_assignment", STEM, "--force"], course)
    release = course / "release" / STEM / f"{STEM}.ipynb"
    _no_answer_in([release])
    for student, nb in submissions(_read(release)).items():
        dest = course / "submitted" / student / STEM / f"{STEM}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
    _run([str(BIN / "nbgrader"), "autograde", STEM, "--force"], course)
    assert _nbgrader_scores(course, STEM, sorted(EXPECTED)) == EXPECTED


def test_otter_gives_each_student_the_tiers_reached(built, tmp_path):
    dist = tmp_path / "dist"
    _run([str(BIN / "otter"), "assign", str(built / "otter" / f"{STEM}.ipynb"), str(dist)],
         tmp_path)
    zip_path = next((dist / "autograder").glob("*.zip"))
    _no_answer_in([p for p in (dist / "student").rglob("*") if p.is_file()])
    scores = {}
    for student, nb in submissions(_read(dist / "student" / f"{STEM}.ipynb")).items():
        sub = tmp_path / "submissions" / student / f"{STEM}.ipynb"
        sub.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, sub)
        results = tmp_path / "results" / student
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True)
        _run([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(results), str(sub)],
             tmp_path)
        data = json.loads((results / "results.json").read_text())
        scores[student] = sum(t.get("score", 0) or 0 for t in data["tests"])
    assert scores == EXPECTED
