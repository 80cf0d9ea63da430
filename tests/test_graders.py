"""The real graders (nbgrader 0.9.6, otter-grader 7.0.0) score simulated submissions.

From the masters, ``make assign``'s code writes the nbgrader course folder and the otter
masters; then for each notebook 01-03 three students submit: every exercise solved, the
release untouched, and one exercise answered with a known mistake. nbgrader
(``generate_assignment``, ``autograde``) and otter (``otter assign``, ``otter run``, which
needs no docker) must give the expected scores. Notebooks 04 and 05, which train, go
through nbgrader once, solved. Graders run with VAELAB_GRADING=1 (no practice mode).

Cost: 16 minutes on the 2-core development machine shared with other jobs (nbgrader on
01-03 2.5 min, otter on 01-03 3.5 min, nbgrader on 04-05 10 min), nearly all of it kernels
running the notebooks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vaelab.tooling.assign import answer_strings, leaks
from vaelab.tooling.assign import main as assign_main
from vaelab.tooling.student import BEGIN, END, find_exercises

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BIN = Path(sys.executable).parent  # nbgrader runs alembic, otter runs jupyter: from .venv
# One known mistake per notebook, as a student would write it, and the score it leaves.
WRONG = {
    "01_gaussian_mle": ("1.2", "mu_hat = float(np.mean(x))\nsigma_hat = float(np.std(x, ddof=1))"),
    # The last exercise: a wrong lambda in 2.3 would fail 2.4 too, which uses it.
    "02_poisson_exercise": ("2.4", "log_lik = float(np.sum(x * np.log(lam_hat) - lam_hat))"),
    "03_elbo_derivations": ("3.1", "return (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)"),
}
SMALL = sorted(WRONG)
TRAINING = ["04_mnist_vae", "05_vae_questions"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", VAELAB_GRADING="1",
               TQDM_DISABLE="1", VAELAB_TRAIN_FRESH="1")
    return env


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _solution_lines(source: str) -> tuple[list[str], int, int]:
    lines = source.split("\n")
    begin = next(n for n, line in enumerate(lines) if line.strip() == BEGIN)
    end = next(n for n, line in enumerate(lines) if line.strip() == END)
    return lines, begin, end


def answered(master: nbformat.NotebookNode, base: nbformat.NotebookNode,
             answers: dict[str, str | None]) -> nbformat.NotebookNode:
    """``base`` (a release) with each exercise in ``answers`` answered: None puts the master's
    solution, a string puts that code (at the region's indentation); markers are dropped."""
    out = nbformat.from_dict(json.loads(json.dumps(base)))
    for exercise in find_exercises(master):
        if exercise.id not in answers:
            continue
        lines, begin, end = _solution_lines(master.cells[exercise.cell_index].source)
        indent = re.match(r"\s*", lines[begin]).group(0)
        code = answers[exercise.id]
        body = lines[begin + 1:end] if code is None else [indent + c for c in code.split("\n")]
        source = "\n".join(lines[:begin] + body + lines[end + 1:])
        header = re.compile(rf"^# Exercise {re.escape(exercise.id)}:", re.MULTILINE)
        target = next(c for c in out.cells if c.cell_type == "code" and header.search(c.source))
        target.source = source
    return out


def _submissions(stem: str, master, release) -> dict[str, nbformat.NotebookNode]:
    ids = [e.id for e in find_exercises(master)]
    subs = {"correct": answered(master, release, dict.fromkeys(ids)),
            "untouched": release}
    if stem in WRONG:
        wrong_id, code = WRONG[stem]
        subs["one_wrong"] = answered(master, release, {**dict.fromkeys(ids), wrong_id: code})
    return subs


def _expected(master: nbformat.NotebookNode) -> dict[str, float]:
    n = len(find_exercises(master))
    return {"correct": n, "untouched": 0, "one_wrong": n - 1}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assign")
    stems = SMALL + TRAINING
    assert assign_main(["--out", str(out)] + [str(NOTEBOOKS / f"{s}.ipynb") for s in stems]) == 0
    return out


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _nbgrader_scores(course: Path, stem: str, students: list[str]) -> dict[str, float]:
    code = ("import json\nfrom nbgrader.api import Gradebook\n"
            "with Gradebook('sqlite:///gradebook.db') as gb:\n"
            f"    scores = {{s: gb.find_submission({stem!r}, s).score for s in {students!r}}}\n"
            "print(json.dumps(scores))")
    return json.loads(_run([sys.executable, "-c", code], course).strip().splitlines()[-1])


def _nbgrader(built: Path, stems: list[str], which: set[str] | None = None) -> dict:
    course = built / "nbgrader"
    scores = {}
    for stem in stems:
        _run([str(BIN / "nbgrader"), "generate_assignment", stem, "--force"], course)
        release = _read(course / "release" / stem / f"{stem}.ipynb")
        master = _read(NOTEBOOKS / f"{stem}.ipynb")
        subs = {k: v for k, v in _submissions(stem, master, release).items()
                if which is None or k in which}
        for student, nb in subs.items():
            dest = course / "submitted" / student / stem / f"{stem}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, dest)
        _run([str(BIN / "nbgrader"), "autograde", stem, "--force"], course)
        scores[stem] = _nbgrader_scores(course, stem, sorted(subs))
    return scores


def test_nbgrader_scores_the_simulated_submissions_of_01_to_03(built):
    for stem, got in _nbgrader(built, SMALL).items():
        want = _expected(_read(NOTEBOOKS / f"{stem}.ipynb"))
        assert got == {k: want[k] for k in got}, f"{stem}: nbgrader gave {got}, expected {want}"


def test_nbgrader_scores_04_and_05_solved(built):
    for stem, got in _nbgrader(built, TRAINING, {"correct"}).items():
        want = _expected(_read(NOTEBOOKS / f"{stem}.ipynb"))["correct"]
        assert got == {"correct": want}, f"{stem}: nbgrader gave {got}, expected {want}"


def test_nbgrader_release_keeps_no_answer_widget_state_or_outputs(built):
    course = built / "nbgrader"
    for stem in SMALL:
        _run([str(BIN / "nbgrader"), "generate_assignment", stem, "--force"], course)
        path = course / "release" / stem / f"{stem}.ipynb"
        nb = _read(path)
        assert "widgets" not in nb.metadata
        answers = answer_strings(_read(NOTEBOOKS / f"{stem}.ipynb"))
        assert leaks(path.read_text(encoding="utf-8"), answers) == []
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_otter_scores_the_simulated_submissions_of_01_to_03(built, tmp_path):
    for stem in SMALL:
        dist = tmp_path / stem
        _run([str(BIN / "otter"), "assign", str(built / "otter" / f"{stem}.ipynb"), str(dist)],
             tmp_path)
        zip_path = next((dist / "autograder").glob("*.zip"))
        release = _read(dist / "student" / f"{stem}.ipynb")
        assert "widgets" not in release.metadata
        master = _read(NOTEBOOKS / f"{stem}.ipynb")
        for path in (dist / "student").rglob("*"):
            if path.is_file():
                assert leaks(path.read_text(encoding="utf-8"), answer_strings(master)) == [], path
        want = _expected(master)
        for student, nb in _submissions(stem, master, release).items():
            sub = tmp_path / "submissions" / student / f"{stem}.ipynb"
            sub.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, sub)
            results = tmp_path / "results" / stem / student
            if results.exists():
                shutil.rmtree(results)
            results.mkdir(parents=True)
            _run([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(results), str(sub)],
                 tmp_path)
            data = json.loads((results / "results.json").read_text())
            score = sum(t.get("score", 0) or 0 for t in data["tests"])
            assert score == want[student], f"{stem}, {student}: otter gave {score}: {data}"
