"""The real graders (nbgrader 0.9.6, otter-grader 7.0.0) grade a simulated class.

``make assign``'s code writes the nbgrader course folder and the otter masters (with the
vaelab wheel, the autograder's requirements and notebook 04's trained models); then, for
each notebook in ``GRADED``, six students submit:

- ``correct``: every exercise solved (the master's solutions);
- ``untouched``: the release as it was handed out;
- ``one_wrong``: one exercise answered with a known mistake;
- ``calls_reference``: every exercise the package answers is answered by calling the
  package (``return vae_loss(...).loss``, ``mu_hat, sigma_hat = gaussian_mle(x)``);
- ``rebinds_check``: wrong answers, and the checks replaced by ones that print "correct"
  (in the check module and under the notebook's own names);
- ``pastes_values``: constants that earlier versions printed (feedback's "expected 14.2277",
  a later cell's "-5.1232").

nbgrader (``generate_assignment``, ``release_assignment``, ``autograde``) and otter
(``otter assign``, one dist per notebook, ``otter run``, which needs no docker) must give
the honest students every exercise they solved and the three cheaters 0 for every exercise
they gamed. Graded runs use the course's settings only: ``nbgrader_config.py`` and otter's
plugin set grading mode and point notebook 04 at the shipped models (nothing trains).

Cost: 15 minutes on the 2-core development machine while other jobs used about one core
(CPU time 15 minutes): ``make assign`` with notebook 04's training about 3, grading the rest.
Notebook 05 trains its models in every graded run, so only its ``correct`` and
``calls_reference`` students go through nbgrader (``CLASS``). ``test_score_table`` prints the
grader x student x notebook table and the grading time per student (``pytest
tests/test_graders.py -k table``; ``VAELAB_GRADED=01_gaussian_mle`` grades one notebook).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from vaelab.tooling.assign import answer_strings, answer_values, leaks
from vaelab.tooling.assign import main as assign_main
from vaelab.tooling.student import BEGIN, END, find_exercises

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BIN = Path(sys.executable).parent  # nbgrader runs alembic, otter runs jupyter: from .venv
GRADED = ["01_gaussian_mle", "02_poisson_exercise", "03_elbo_derivations", "04_mnist_vae",
          "05_vae_questions"]
# VAELAB_GRADED=01_gaussian_mle,... grades a subset (to look at one notebook's table).
GRADED = [s for s in os.environ.get("VAELAB_GRADED", ",".join(GRADED)).split(",") if s]
STUDENTS = ["correct", "untouched", "one_wrong", "calls_reference", "rebinds_check",
            "pastes_values"]
GRADERS = ["nbgrader", "otter"]
# Notebook 05 trains its thirteen small models in every graded run (about 45 s alone on two
# cores), so only two of its students go through one grader: the rest of the class would
# add about 9 minutes to make test.
CLASS = {stem: (GRADERS, STUDENTS) for stem in GRADED}
if "05_vae_questions" in CLASS:
    CLASS["05_vae_questions"] = (["nbgrader"], ["correct", "calls_reference"])

# Per notebook and student: the code each gamed (or wrong) exercise gets in its solution
# region; every other exercise gets the master's solution. The expected score is the number
# of exercises not listed.
ANSWERS: dict[str, dict[str, dict[str, str]]] = {
    "01_gaussian_mle": {
        "one_wrong": {"1.2": "mu_hat = float(np.mean(x))\nsigma_hat = float(np.std(x, ddof=1))"},
        "calls_reference": {"1.1": "return gaussian_log_likelihood(x, mu, sigma)",
                            "1.2": "mu_hat, sigma_hat = gaussian_mle(x)"},
        "rebinds_check": {"1.1": "return 0.0", "1.2": "mu_hat, sigma_hat = 0.0, 1.0"},
        "pastes_values": {"1.1": "return -23.912432",
                          "1.2": "mu_hat, sigma_hat = 3500.0, 700.55"},
    },
    "02_poisson_exercise": {
        # The last exercise: a wrong lambda in 2.3 would fail 2.4 too, which uses it.
        "one_wrong": {"2.4": "log_lik = float(np.sum(x * np.log(lam_hat) - lam_hat))"},
        "calls_reference": {
            "2.1": 'model = "x_i ~ Poisson(lambda), IID"\n\n\n'
                   "def sample_cars(lam, n, rng):\n    return sample_poisson(lam, n, rng)",
            "2.3": "lam_hat = poisson_mle(x)",
            "2.4": "log_lik = poisson_log_likelihood(x, lam_hat)"},
        "rebinds_check": {
            "2.1": 'model = "x_i ~ N(mu, sigma^2)"\n\n\n'
                   "def sample_cars(lam, n, rng):\n    return rng.normal(lam, 1.0, size=n)",
            "2.2": 'theta = {"mu", "sigma"}', "2.3": "lam_hat = 3.0", "2.4": "log_lik = -1.0"},
        "pastes_values": {"2.3": "lam_hat = 2.6667", "2.4": "log_lik = -5.1232"},
    },
    "03_elbo_derivations": {
        "one_wrong": {"3.1": "return (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)"},
        "calls_reference": {
            "3.1": "return kl.gaussian_kl_standard_normal(mu, logvar)",
            "3.2": "return elbo.reparameterized_elbo(log_likelihood, mu, logvar, eps, "
                   "analytic_kl=False)"},
        "rebinds_check": {"3.1": "return mu.sum(dim=-1)", "3.2": "return mu.sum()"},
        "pastes_values": {
            "3.1": "return torch.tensor([0.4937, 0.0, 1.7516, 2.1012], dtype=torch.float64)",
            "3.2": "return torch.tensor(-3.2802, dtype=torch.float64)"},
    },
    "04_mnist_vae": {
        "one_wrong": {"4.2": "bce = torch.nn.functional.binary_cross_entropy_with_logits("
                             "logits, x, reduction='none')\n"
                             "return (bce.mean(dim=1) + 0.5 * (mu**2 + logvar.exp() - 1 - "
                             "logvar).sum(dim=1)).mean()"},
        "calls_reference": {"4.1": "return reparameterize(mu, logvar, eps)",
                            "4.2": "return vae_loss(logits, x, mu, logvar).loss"},
        "rebinds_check": {"4.1": "return mu", "4.2": "return logits.sum()"},
        "pastes_values": {"4.1": "return torch.tensor([[0.3052, -1.5483, 0.8816]] * 4)",
                          "4.2": "return torch.tensor(14.2277)"},
    },
    "05_vae_questions": {
        "calls_reference": {
            "5.1": "from vaelab.exercises.vae_questions import free_bits_reference\n"
                   "return free_bits_reference(mu, logvar, free_bits)",
            "5.2": "return optimise_local_posteriors(model, x, mu0, logvar0, steps=steps, lr=lr)"},
    },
}
# What the student who rebinds the checks adds after the imports: every check of the
# notebook replaced, in its module and under the notebook's own names.
REBIND = '''import vaelab.exercises.{module} as checks

fake = lambda *args, **kwargs: print("correct")  # noqa: E731
{assignments}
'''
CHECK_MODULES = {"01": "mle", "02": "mle", "03": "elbo", "04": "vae", "05": "vae_questions"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VAELAB_GRADING", "VAELAB_TRAIN_FRESH", "VAELAB_CHECKPOINT_DIR")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", TQDM_DISABLE="1")
    return env


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def answered(master: nbformat.NotebookNode, base: nbformat.NotebookNode,
             answers: dict[str, str | None]) -> nbformat.NotebookNode:
    """``base`` (a release) with each exercise in ``answers`` answered: None puts the master's
    solution, a string puts that code (at the region's indentation); markers are dropped."""
    out = nbformat.from_dict(json.loads(json.dumps(base)))
    for exercise in find_exercises(master):
        if exercise.id not in answers:
            continue
        lines = master.cells[exercise.cell_index].source.split("\n")
        begin = next(n for n, line in enumerate(lines) if line.strip() == BEGIN)
        end = next(n for n, line in enumerate(lines) if line.strip() == END)
        indent = re.match(r"\s*", lines[begin]).group(0)
        code = answers[exercise.id]
        body = lines[begin + 1:end] if code is None else [indent + c for c in code.split("\n")]
        header = re.compile(rf"^# Exercise {re.escape(exercise.id)}:", re.MULTILINE)
        target = next(c for c in out.cells if c.cell_type == "code" and header.search(c.source))
        target.source = "\n".join(lines[:begin] + body + lines[end + 1:])
    return out


def _rebinding_cell(stem: str, master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    names = sorted({name.rpartition(".")[2] for cell in master.cells if cell.cell_type == "code"
                    for name in re.findall(r"\b(check_\w+)\(", cell.source)})
    assignments = "\n".join(f"checks.{n} = {n} = fake" for n in names)
    return nbformat.v4.new_code_cell(REBIND.format(module=CHECK_MODULES[stem[:2]],
                                                   assignments=assignments))


def submissions(stem: str, release: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The students' notebooks (``CLASS``), built from the release they were handed."""
    master = _read(NOTEBOOKS / f"{stem}.ipynb")
    ids = [e.id for e in find_exercises(master)]
    subs = {}
    for student in CLASS[stem][1]:
        subs[student] = release if student == "untouched" else answered(
            master, release, {**dict.fromkeys(ids), **ANSWERS[stem].get(student, {})})
    if "rebinds_check" in subs:
        first = next(i for i, c in enumerate(subs["rebinds_check"].cells)
                     if c.cell_type == "code" and "# Exercise" in c.source)
        subs["rebinds_check"].cells.insert(first, _rebinding_cell(stem, master))
    return subs


def expected(stem: str) -> dict[str, int]:
    n = len(find_exercises(_read(NOTEBOOKS / f"{stem}.ipynb")))
    return {s: 0 if s == "untouched" else n - len(ANSWERS[stem].get(s, {}))
            for s in CLASS[stem][1]}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assign")
    assert assign_main(["--out", str(out), "--project", str(ROOT), "--checkpoints"]
                       + [str(NOTEBOOKS / f"{s}.ipynb") for s in GRADED]) == 0
    return out


def _nbgrader_scores(course: Path, stem: str, students: list[str]) -> dict[str, float]:
    code = ("import json\nfrom nbgrader.api import Gradebook\n"
            "with Gradebook('sqlite:///gradebook.db') as gb:\n"
            f"    scores = {{s: gb.find_submission({stem!r}, s).score for s in {students!r}}}\n"
            "print(json.dumps(scores))")
    return json.loads(_run([sys.executable, "-c", code], course).strip().splitlines()[-1])


def _grade_nbgrader(built: Path, stem: str) -> tuple[dict[str, float], float]:
    course = built / "nbgrader"
    _run([str(BIN / "nbgrader"), "generate_assignment", stem, "--force"], course)
    _run([str(BIN / "nbgrader"), "release_assignment", stem, "--force"], course)
    release = course / "release" / stem / f"{stem}.ipynb"
    _assert_nothing_given_away(stem, [release])
    for student, nb in submissions(stem, _read(release)).items():
        dest = course / "submitted" / student / stem / f"{stem}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
    start = time.perf_counter()
    _run([str(BIN / "nbgrader"), "autograde", stem, "--force"], course)
    seconds = time.perf_counter() - start
    return _nbgrader_scores(course, stem, CLASS[stem][1]), seconds


def _grade_otter(built: Path, stem: str, work: Path) -> tuple[dict[str, float], float]:
    folder = built / "otter" / stem
    dist = folder / "dist"
    _run([str(BIN / "otter"), "assign", str(folder / f"{stem}.ipynb"), str(dist)], folder)
    zip_path = next((dist / "autograder").glob("*.zip"))
    student_files = [p for p in (dist / "student").rglob("*") if p.is_file()]
    _assert_nothing_given_away(stem, student_files)
    scores, start = {}, time.perf_counter()
    for student, nb in submissions(stem, _read(dist / "student" / f"{stem}.ipynb")).items():
        sub = work / "submissions" / stem / student / f"{stem}.ipynb"
        sub.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, sub)
        results = work / "results" / stem / student
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True)
        _run([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(results), str(sub)], work)
        data = json.loads((results / "results.json").read_text())
        scores[student] = sum(t.get("score", 0) or 0 for t in data["tests"])
    return scores, time.perf_counter() - start


def _assert_nothing_given_away(stem: str, paths: list[Path]) -> None:
    answers = answer_strings(_read(NOTEBOOKS / f"{stem}.ipynb"), stem, answer_values(NOTEBOOKS))
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert leaks(text, answers) == [], path
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            assert "widgets" not in nb.metadata, path
            assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory) -> dict[tuple[str, str], tuple[dict[str, float], float]]:
    """(grader, notebook) -> (score per student, seconds to grade the six)."""
    work = tmp_path_factory.mktemp("otter")
    results = {}
    for stem in GRADED:
        if "nbgrader" in CLASS[stem][0]:
            results["nbgrader", stem] = _grade_nbgrader(built, stem)
        if "otter" in CLASS[stem][0]:
            results["otter", stem] = _grade_otter(built, stem, work)
    return results


@pytest.mark.parametrize("grader", GRADERS)
def test_the_class_is_graded_as_expected(graded, grader):
    for stem in GRADED:
        if (grader, stem) in graded:
            got, _ = graded[grader, stem]
            assert got == expected(stem), f"{grader}, {stem}: got {got}, want {expected(stem)}"


def test_score_table(graded, capsys):
    """Prints the table: one row per grader and student, one column per notebook."""
    lines = ["", "score / exercises; seconds to grade one student (machine and its load vary)",
             f"{'grader':9s} {'student':16s} " + " ".join(f"{s[:2]:>7s}" for s in GRADED)]
    for grader in GRADERS:
        for student in STUDENTS:
            cells = []
            for stem in GRADED:
                scores = graded.get((grader, stem), ({}, 0.0))[0]
                n = len(find_exercises(_read(NOTEBOOKS / f"{stem}.ipynb")))
                cells.append(f"{scores[student]:g}/{n}" if student in scores else "-")
            lines.append(f"{grader:9s} {student:16s} " + " ".join(f"{c:>7s}" for c in cells))
        per_student = [f"{graded[grader, s][1] / len(graded[grader, s][0]):7.1f}"
                       if (grader, s) in graded else f"{'-':>7s}" for s in GRADED]
        lines.append(f"{grader:9s} {'s per student':16s} " + " ".join(per_student))
    with capsys.disabled():
        print("\n".join(lines), flush=True)
    assert all(scores == expected(stem) for (_, stem), (scores, _) in graded.items())


def test_no_graded_run_prints_an_answer_its_student_did_not_give(built, graded):
    """nbgrader keeps each graded run's outputs: none shows an answer value of an exercise its
    student did not solve (the package's answers stay closed until the student's own passes)."""
    values = answer_values(NOTEBOOKS)
    for stem in GRADED:
        exercise_ids = [e.id for e in find_exercises(_read(NOTEBOOKS / f"{stem}.ipynb"))]
        for student in ("untouched", "one_wrong", "calls_reference", "rebinds_check"):
            if student not in CLASS[stem][1] or "nbgrader" not in CLASS[stem][0]:
                continue
            unsolved = exercise_ids if student == "untouched" else ANSWERS[stem].get(student, {})
            nb = _read(built / "nbgrader" / "autograded" / student / stem / f"{stem}.ipynb")
            outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
            for eid in unsolved:
                for value in values.get(eid, []):
                    assert value not in outputs, f"{stem}, {student}: the outputs show {value}"
