"""vaelab.tooling.assign: grader metadata and grader inputs derived from the markers.

The real graders run on what it writes in test_graders.py; here: the masters' metadata
agree with their markers, the derivation on small notebooks, and no answer in any file
a student receives.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vaelab.tooling import assign, course
from vaelab.tooling.student import BEGIN, END, REVEAL

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _nb() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell("# Title"),
        new_code_cell("from vaelab.exercises.mle import "
                      "check_gaussian_log_likelihood as check_add"),
        new_code_cell(f"# Exercise 1.1: add\ndef add(a, b):\n    {BEGIN}\n    return a + b\n"
                      f"    {END}", outputs=[new_output("stream", text="out\n")],
                      execution_count=1),
        new_markdown_cell("Check it:"),
        new_code_cell("check_add(add)", execution_count=2),
        new_code_cell("print(1)", execution_count=3),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


@pytest.mark.parametrize("path", MASTERS, ids=[p.name for p in MASTERS])
def test_masters_metadata_agree_with_their_markers(path):
    nb = nbformat.read(path, as_version=4)
    assert assign.metadata_problems(nb, path.name) == []


def test_metadata_marks_the_exercise_a_solution_and_the_next_code_cell_a_graded_test():
    nb = assign.with_grader_metadata(_nb())
    exercise, check = nb.cells[2].metadata.nbgrader, nb.cells[4].metadata.nbgrader
    assert exercise["solution"] and not exercise["grade"] and not exercise["locked"]
    assert exercise["grade_id"] == "exercise_1_1"
    assert check["grade"] and check["locked"] and not check["solution"]
    assert check["points"] == assign.POINTS and check["grade_id"] == "check_1_1"
    assert "nbgrader" not in nb.cells[5].metadata


@pytest.mark.parametrize("change", ["missing", "stale", "extra"])
def test_metadata_problems_finds_every_disagreement(change):
    nb = assign.with_grader_metadata(_nb())
    if change == "missing":
        del nb.cells[4].metadata["nbgrader"]
    elif change == "stale":
        nb.cells[2].metadata.nbgrader["grade_id"] = "exercise_9_9"
    else:
        nb.cells[5].metadata["nbgrader"] = dict(nb.cells[4].metadata.nbgrader)
    problems = assign.metadata_problems(nb, "nb.ipynb")
    assert len(problems) == 1 and "make grader-metadata" in problems[0]


def test_an_exercise_without_a_check_cell_is_an_error():
    nb = _nb()
    nb.cells = nb.cells[:4]
    with pytest.raises(ValueError, match="no check cell"):
        assign.expected_metadata(nb, "nb.ipynb")


def test_graded_version_calls_the_check_afresh_drops_outputs_and_reveals_keeps_solutions():
    nb = _nb()
    nb.cells.insert(5, new_code_cell("show_source(add)", metadata={"tags": ["reveal"]}))
    graded = assign.for_graders(nb)
    assert "widgets" not in graded.metadata
    assert all(c.outputs == [] and c.execution_count is None
               for c in graded.cells if c.cell_type == "code")
    assert BEGIN in graded.cells[2].source
    assert all("show_source" not in c.source for c in graded.cells)
    check = graded.cells[4].source
    assert "importlib.reload(vaelab.exercises.grading).grade(" in check
    assert "'vaelab.exercises.mle.check_gaussian_log_likelihood', add)" in check
    assert "check_add(add)" not in check
    assert graded.cells[4].metadata.nbgrader["grade_id"] == "check_1_1"


def test_a_check_cell_without_one_call_of_a_check_is_an_error():
    nb = _nb()
    nb.cells[4].source = "print(add(1, 2))"
    with pytest.raises(ValueError, match="exactly one call of a check"):
        assign.for_graders(nb, "nb.ipynb")


def test_the_graded_check_cell_grades(capsys):
    source = assign.for_graders(_nb()).cells[4].source
    namespace = {"add": lambda x, mu, sigma: float(
        np.sum(-0.5 * np.log(2 * np.pi * sigma**2) - (x - mu) ** 2 / (2 * sigma**2)))}
    exec(source, namespace)
    assert "Exercise 1.1: correct." in capsys.readouterr().out


def test_otter_master_has_a_config_and_one_question_per_exercise():
    nb = assign.for_otter(assign.with_grader_metadata(_nb()), files=["checkpoints"])
    sources = [c.source for c in nb.cells]
    assert nb.cells[0].cell_type == "raw" and sources[0].startswith("# ASSIGNMENT CONFIG")
    for line in ("requirements: requirements.txt", "autograder_files:\n  - checkpoints",
                 "plugins:\n  - vaelab.tooling.otter_plugin.CourseSettings"):
        assert line in sources[0]
    start = sources.index("# BEGIN QUESTION\nname: q1_1\npoints: 1")
    assert sources[start + 1:start + 4:2] == ["# BEGIN SOLUTION", "# END SOLUTION"]
    exercise = sources[start + 2]
    assert "    # BEGIN SOLUTION" in exercise and BEGIN not in exercise
    test = sources[start + 5]
    assert test.startswith("# HIDDEN") and "vaelab.exercises.grading).grade(" in test
    assert sources[start + 6:start + 8] == ["# END TESTS", "# END QUESTION"]
    assert "check_add(add)" in sources  # the student's own check cell stays
    assert all("nbgrader" not in c.metadata for c in nb.cells)


def _stepped() -> nbformat.NotebookNode:
    """An exercise graded in steps: three check cells calling the same check, then code."""
    nb = _nb()
    nb.cells[4].source = "check_add(add, 1)"
    nb.cells[5:5] = [new_code_cell("check_add(add, 2)"), new_code_cell("check_add(add, 3)")]
    return nb  # cells: 2 exercise, 4-6 checks, 7 print(1)


def test_an_exercise_graded_in_steps_has_one_graded_cell_per_step():
    nb = _stepped()
    (exercise,) = assign.find_exercises(nb)
    assert assign.check_cell_indices(nb, exercise) == [4, 5, 6]
    meta = assign.with_grader_metadata(nb)
    ids = [meta.cells[i].metadata.nbgrader["grade_id"] for i in (4, 5, 6)]
    assert ids == ["check_1_1", "check_1_1_2", "check_1_1_3"]
    assert all(meta.cells[i].metadata.nbgrader["points"] == assign.POINTS for i in (4, 5, 6))
    assert "nbgrader" not in meta.cells[7].metadata  # print(1): not a check


def test_a_cell_after_the_check_is_a_step_only_if_it_ends_with_the_same_call():
    nb = _stepped()
    nb.cells[6].source = "check_add(add, 3)\nprint('more')"  # ends with another call
    nb.cells[5].source = "other_check(add, 2)"  # another function
    (exercise,) = assign.find_exercises(nb)
    assert assign.check_cell_indices(nb, exercise) == [4]
    nb.cells[5] = new_markdown_cell("prose ends the steps")
    nb.cells[6].source = "check_add(add, 3)"
    assert assign.check_cell_indices(nb, exercise) == [4]


def test_every_step_of_an_exercise_in_steps_is_graded_through_the_fresh_check():
    graded = assign.for_graders(_stepped())
    check = "'vaelab.exercises.mle.check_gaussian_log_likelihood', add"
    assert [f"grade(\n    {check}, {n})" in graded.cells[i].source
            for n, i in ((1, 4), (2, 5), (3, 6))] == [True] * 3
    # the graded version's steps are found as the master's are (its metadata agrees)
    assert assign.metadata_problems(graded) == []


def test_otter_question_of_an_exercise_in_steps_has_one_test_per_step():
    nb = assign.for_otter(assign.with_grader_metadata(_stepped()))
    sources = [c.source for c in nb.cells]
    start = sources.index("# BEGIN QUESTION\nname: q1_1\npoints: 3")
    tests = sources[sources.index("# BEGIN TESTS", start) + 1:sources.index("# END TESTS", start)]
    assert [t.startswith("# HIDDEN") for t in tests] == [True] * 3
    assert [f"add, {n})" in tests[n - 1] and ".grading).grade(" in tests[n - 1]
            for n in (1, 2, 3)] == [True] * 3


def test_answer_strings_are_the_values_the_solution_lines_and_their_answers():
    nb = _nb()
    nb.cells[2].source = nb.cells[2].source.replace(
        "return a + b", "total = a + b\n    opt.zero_grad()\n    return float(a + b) * 1")
    assert assign.answer_strings(nb, values={"1.1": ["42.42"]}) == {
        "1.1": ["42.42", "total = a + b", "return float(a + b) * 1", "float(a + b) * 1"]}
    assert assign.leaks("hint: float(a + b) * 1", assign.answer_strings(nb)) == [
        "Exercise 1.1: 'float(a + b) * 1'"]


def test_answer_values_come_from_the_file_beside_the_masters(tmp_path):
    assert assign.answer_values(tmp_path) == {}
    (tmp_path / assign.ANSWER_VALUES_FILE).write_text('{"_about": "x", "1.2": ["700.55"]}')
    assert assign.answer_values(tmp_path) == {"1.2": ["700.55"]}
    (tmp_path / assign.ANSWER_VALUES_FILE).write_text('{"1.2": 700.55}')
    with pytest.raises(ValueError, match="lists of strings"):
        assign.answer_values(tmp_path)


def test_the_installed_package_holds_no_answer_value_and_no_solution_line():
    """What `pip install` puts on a student's machine: src/vaelab and the README. The package's
    own answers (functions carrying @answers, switched off while graded) are its reference
    code."""
    values = assign.answer_values(ROOT / "notebooks")
    answers: dict[str, list[str]] = {}
    for master in MASTERS:
        for eid, strings in assign.answer_strings(nbformat.read(master, 4), master.name,
                                                  values).items():
            answers.setdefault(eid, []).extend(strings)
    found = []
    # README.md is the wheel's long description (its METADATA file).
    for path in [ROOT / "README.md", *sorted((ROOT / "src" / "vaelab").rglob("*"))]:
        if not path.is_file() or path.suffix not in (".py", ".json", ".txt", ".ipynb"):
            continue
        text = path.read_text(encoding="utf-8")
        exempt = _reference_bodies(text) if path.suffix == ".py" else []
        for eid, strings in answers.items():
            for answer in strings:
                for at in _positions(text, answer):
                    if not any(lo <= at < hi and eid in ids for lo, hi, ids in exempt):
                        found.append(f"{path.relative_to(ROOT)}: Exercise {eid}: {answer!r}")
    assert found == []


def _positions(text: str, needle: str) -> list[int]:
    out, at = [], text.find(needle)
    while at != -1:
        out.append(at)
        at = text.find(needle, at + 1)
    return out


def _reference_bodies(text: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, end, exercises) in ``text`` of each function decorated with @answers(...)."""
    import ast

    tree, starts = ast.parse(text), [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    bodies = []
    names = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
             and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "answers":
                    ids = tuple(a.value if isinstance(a, ast.Constant) else names.get(a.id)
                                for a in deco.args if isinstance(a, ast.Constant | ast.Name))
                    bodies.append((starts[node.lineno - 1], starts[node.end_lineno], ids))
    return bodies


def test_metadata_command_writes_only_when_out_of_date(tmp_path, capsys):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_nb(), path)
    assert assign.main(["--metadata", str(path)]) == 0
    assert "written" in capsys.readouterr().out
    assert assign.metadata_problems(nbformat.read(path, as_version=4)) == []
    assert assign.main(["--metadata", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_a_leaking_master_stops_the_command_and_nothing_is_written(tmp_path, capsys):
    nb = _nb()
    nb.cells.insert(4, new_markdown_cell("Hint: `return a + b`"))
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert assign.main(["--out", str(tmp_path / "out"), str(path)]) == 2
    assert "gives away Exercise 1.1" in capsys.readouterr().err
    assert not any((tmp_path / "out").rglob("*.ipynb"))


def test_an_answer_value_in_a_master_stops_the_command(tmp_path, capsys):
    nb = _nb()
    nb.cells.insert(4, new_markdown_cell("The answer is 42.42."))
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    (tmp_path / assign.ANSWER_VALUES_FILE).write_text('{"1.1": ["42.42"]}')
    assert assign.main(["--out", str(tmp_path / "out"), str(path)]) == 2
    assert "gives away Exercise 1.1: '42.42'" in capsys.readouterr().err


def test_assign_writes_every_graders_input_with_no_answer_for_students(tmp_path):
    out = tmp_path / "build"
    assert assign.main(["--out", str(out)] + [str(p) for p in MASTERS]) == 0
    config = (out / "nbgrader" / "nbgrader_config.py").read_text()
    for setting in ('course_id = "vaelab"', "c.Exchange.root", "c.Execute.timeout",
                    'os.environ["VAELAB_GRADING"] = "1"', "VAELAB_CHECKPOINT_DIR"):
        assert setting in config
    assert (out / "nbgrader" / "exchange").is_dir()
    values = assign.answer_values(ROOT / "notebooks")
    for master in MASTERS:
        nb = nbformat.read(master, as_version=4)
        answers = assign.answer_strings(nb, master.name, values)
        student = (out / "student" / master.name).read_text(encoding="utf-8")
        assert assign.leaks(student, answers) == [], master.name
        assert "show_source(vae_loss)" not in student and "show_source(reparameterize)" not in \
            student
        otter = out / "otter" / master.stem
        requirements = (otter / "requirements.txt").read_text()
        assert "vaelab==" in requirements and "torch==" in requirements
        for path in (out / "nbgrader" / "source" / master.stem / master.name,
                     otter / master.name):
            graded = nbformat.read(path, as_version=4)
            assert "widgets" not in graded.metadata
            assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")
            assert all(REVEAL not in c.metadata.get("tags", []) for c in graded.cells)
        source = nbformat.read(out / "nbgrader" / "source" / master.stem / master.name, 4)
        assert assign.metadata_problems(source) == []
        graded_checks = [c.source for c in source.cells
                         if c.metadata.get("nbgrader", {}).get("grade")]
        assert graded_checks and all(".grade(" in c for c in graded_checks)


def test_the_autograder_installs_vaelab_and_pinned_versions(tmp_path):
    wheel = tmp_path / "vaelab-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("vaelab-0.1.0.dist-info/METADATA", "Name: vaelab\n" + "".join(
            f"Requires-Dist: {r}\n" for r in ["numpy>=1.24", "scipy", "matplotlib", "torch>=2.4",
                                              "ipywidgets", 'nbformat; extra == "tooling"']))
    text = course.autograder_requirements(wheel)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "./files/vaelab-0.1.0-py3-none-any.whl"
    names = {line.split("==")[0] for line in lines[1:]}
    assert names == {"torch", "numpy", "scipy", "matplotlib", "ipywidgets", "ipykernel"}
    assert all("==" in line and "+" not in line for line in lines[1:])


@pytest.mark.slow
def test_checkpoints_are_trained_once_where_train_or_load_finds_them(tmp_path):
    from vaelab import training

    model = {"latent_dim": 2, "hidden": [8], "input_dim": 16, "activation": "relu"}
    recipe = {"epochs": 1, "batch_size": 32, "seed": 0}
    nb = new_notebook(cells=[
        new_code_cell("import torch\nfrom vaelab import training\n"
                      "images = torch.arange(64 * 16).reshape(64, 16).remainder(256).byte()"),
        new_code_cell(f"model, history, reused = training.train_or_load({model!r}, {recipe!r}, "
                      "images, progress=False)"),
        new_code_cell("raise RuntimeError('not run: after the last training cell')"),
    ])
    master = tmp_path / "04_x.ipynb"
    nbformat.write(nb, master)
    assert course.training_cells(nb) == [1]
    folder = tmp_path / "checkpoints"
    course.train_checkpoints(master, nb, folder)
    assert len(list(folder.glob("vae-*.pt"))) == 1
    images = torch.arange(64 * 16).reshape(64, 16).remainder(256).byte()
    _, _, reused = training.train_or_load(model, recipe, images, cache_dir=folder, progress=False)
    assert reused  # the graded run's call finds it


def test_the_files_checked_before_writing_are_the_files_written(tmp_path):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_nb(), path)
    out = tmp_path / "out"
    assert assign.main(["--out", str(out), str(path)]) == 0
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == {*assign.destinations(out, path), out / "nbgrader" / "nbgrader_config.py"}
