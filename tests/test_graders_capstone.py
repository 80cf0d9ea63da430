"""Notebook 06 (the capstone) under the real graders: simulated students and their tiers.

Exercise 6.1 is graded in three steps, one check cell (and one point) per tier; every graded
run trains its student's model from scratch, with a seed drawn when it grades. The class:

- ``correct``: the master's model and plan, which reach the top tier: 3 points;
- ``untouched``: the release as it was handed out: 0;
- ``does_not_train``: notebook 04's layers with a learning rate of 1, so the loss becomes NaN
  in the first steps: 0, and the message says to lower the learning rate;
- ``mlp_copy``: notebook 04's model and recipe (``VAE`` with notebook 04's settings, 24
  epochs): within the budget, scored, and beats nothing: tier 1, 1 point;
- ``calls_package``: the package's own convolutional VAE (``StudentConvVAE``) under the
  student's name: refused, 0;
- ``pastes_weights``: notebook 04's layers loaded with weights made outside the class (a
  pasted ``state_dict``), every instance the same: refused, 0 (only what ``MyVAE()`` learns
  from ``PLAN`` counts).

``make assign``'s code writes the course (with the wheel, and notebook 04's MLP trained once
for section 4 of every graded run); nbgrader (``generate_assignment``, ``release_assignment``,
``autograde``) and otter (``otter assign``, ``otter run``) grade the class, one graded run per
student and grader. Cost: two trainings per grader (``correct``: about a budget;
``mlp_copy``: a budget), the rest stops at the rules. ``test_capstone_score_table`` prints the
scores and the seconds per student.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from test_graders import (
    BIN,
    NOTEBOOKS,
    ROOT,
    _assert_nothing_given_away,
    _nbgrader_scores,
    _read,
    _run,
)

from vaelab.tooling.assign import main as assign_main
from vaelab.tooling.student import BEGIN, END, find_exercises

pytestmark = pytest.mark.slow

STEM = "06_your_own_vae"
EXPECTED = {"correct": 3, "untouched": 0, "does_not_train": 0, "mlp_copy": 1,
            "calls_package": 0, "pastes_weights": 0}
# What each refused student's graded run must say (nbgrader keeps the outputs).
MESSAGES = {"does_not_train": "Lower the learning rate",
            "calls_package": "design your own layers",
            "pastes_weights": "weights trained elsewhere earn nothing"}
HEADER = "# Exercise 6.1: your own VAE and its training plan\n"
MLP_LAYERS = '''class MyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.likelihood = Bernoulli()
        self.latent_dim = 20
        self.encoder = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 40))
        self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))
{extra}
    def encode(self, x):
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z):
        return self.decoder(z)
'''
SOURCES = {
    "does_not_train": HEADER + MLP_LAYERS.format(extra="") + "\n\nPLAN = dict(epochs=10, lr=1.0)\n",
    "mlp_copy": HEADER + '''from vaelab.vae import VAE


class MyVAE(VAE):
    def __init__(self):
        super().__init__(latent_dim=20, hidden=[400])  # notebook 04's model


PLAN = dict(epochs=24, batch_size=128, lr=3e-3, lr_schedule="cosine", init_output_bias=True)
''',
    "calls_package": HEADER + '''from vaelab.tooling.bench import StudentConvVAE


class MyVAE(StudentConvVAE):
    pass


PLAN = dict(epochs=10)
''',
    "pastes_weights": HEADER + "PRETRAINED = None  # weights trained on the test images, say\n\n"
    + MLP_LAYERS.format(extra="        if PRETRAINED is not None:\n"
                              "            self.load_state_dict(PRETRAINED)\n")
    + "\n\nPRETRAINED = MyVAE().state_dict()\nPLAN = dict(epochs=1)\n",
}


def _solved(master: nbformat.NotebookNode) -> str:
    """The master's exercise cell with its solutions in place and the markers dropped."""
    (exercise,) = find_exercises(master)
    lines = master.cells[exercise.cell_index].source.split("\n")
    return "\n".join(line for line in lines if line.strip() not in (BEGIN, END))


def submissions(release: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The students' notebooks, built from the release they were handed."""
    sources = {"correct": _solved(_read(NOTEBOOKS / f"{STEM}.ipynb")), **SOURCES}
    subs = {"untouched": release}
    for student, source in sources.items():
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        cell = next(c for c in nb.cells if c.cell_type == "code"
                    and re.search(r"^# Exercise 6\.1:", c.source, re.MULTILINE))
        cell.source = source
        subs[student] = nb
    return subs


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assign")
    assert assign_main(["--out", str(out), "--project", str(ROOT), "--checkpoints",
                        str(NOTEBOOKS / f"{STEM}.ipynb")]) == 0
    return out


def _grade_nbgrader(built: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Scores, and the seconds of each student's graded run."""
    course = built / "nbgrader"
    _run([str(BIN / "nbgrader"), "generate_assignment", STEM, "--force"], course)
    _run([str(BIN / "nbgrader"), "release_assignment", STEM, "--force"], course)
    release = course / "release" / STEM / f"{STEM}.ipynb"
    _assert_nothing_given_away(STEM, [release])
    seconds = {}
    for student, nb in submissions(_read(release)).items():
        dest = course / "submitted" / student / STEM / f"{STEM}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
        start = time.perf_counter()
        _run([str(BIN / "nbgrader"), "autograde", STEM, "--student", student, "--force"], course)
        seconds[student] = time.perf_counter() - start
    return _nbgrader_scores(course, STEM, list(EXPECTED)), seconds


def _grade_otter(built: Path, work: Path) -> tuple[dict[str, float], dict[str, float]]:
    folder = built / "otter" / STEM
    dist = folder / "dist"
    _run([str(BIN / "otter"), "assign", str(folder / f"{STEM}.ipynb"), str(dist)], folder)
    zip_path = next((dist / "autograder").glob("*.zip"))
    _assert_nothing_given_away(STEM, [p for p in (dist / "student").rglob("*") if p.is_file()])
    scores, seconds = {}, {}
    for student, nb in submissions(_read(dist / "student" / f"{STEM}.ipynb")).items():
        sub = work / "submissions" / student / f"{STEM}.ipynb"
        sub.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, sub)
        results = work / "results" / student
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True)
        start = time.perf_counter()
        _run([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(results), str(sub)], work)
        seconds[student] = time.perf_counter() - start
        data = json.loads((results / "results.json").read_text())
        scores[student] = sum(t.get("score", 0) or 0 for t in data["tests"])
    return scores, seconds


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """grader -> (score per student, seconds per student)."""
    return {"nbgrader": _grade_nbgrader(built),
            "otter": _grade_otter(built, tmp_path_factory.mktemp("otter"))}


@pytest.mark.parametrize("grader", ["nbgrader", "otter"])
def test_each_student_gets_the_tiers_reached(graded, grader):
    assert graded[grader][0] == EXPECTED


def test_a_refused_student_is_told_why(built, graded):
    for student, message in MESSAGES.items():
        nb = _read(built / "nbgrader" / "autograded" / student / STEM / f"{STEM}.ipynb")
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert message in outputs, f"{student}: no {message!r} in the graded run's outputs"


def test_capstone_score_table(graded, capsys):
    lines = ["", f"{STEM}: score / 3 and seconds to grade (machine and its load vary)",
             f"{'student':16s} " + " ".join(f"{g:>16s}" for g in graded)]
    for student in EXPECTED:
        lines.append(f"{student:16s} " + " ".join(
            f"{scores[student]:>6g} {seconds[student]:7.0f} s" for scores, seconds
            in graded.values()))
    with capsys.disabled():
        print("\n".join(lines), flush=True)
    assert all(scores == EXPECTED for scores, _ in graded.values())
