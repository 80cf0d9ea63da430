"""vaelab.tooling.assign: grader metadata and grader inputs derived from the markers.

The real graders run on what it writes in test_graders.py; here: the masters' metadata
agree with their markers, the derivation on small notebooks, and no answer in any file
a student receives.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vaelab.tooling import assign
from vaelab.tooling.student import BEGIN, END

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _nb() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell("# Title"),
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
    exercise, check = nb.cells[1].metadata.nbgrader, nb.cells[3].metadata.nbgrader
    assert exercise["solution"] and not exercise["grade"] and not exercise["locked"]
    assert exercise["grade_id"] == "exercise_1_1"
    assert check["grade"] and check["locked"] and not check["solution"]
    assert check["points"] == assign.POINTS and check["grade_id"] == "check_1_1"
    assert "nbgrader" not in nb.cells[4].metadata


@pytest.mark.parametrize("change", ["missing", "stale", "extra"])
def test_metadata_problems_finds_every_disagreement(change):
    nb = assign.with_grader_metadata(_nb())
    if change == "missing":
        del nb.cells[3].metadata["nbgrader"]
    elif change == "stale":
        nb.cells[1].metadata.nbgrader["grade_id"] = "exercise_9_9"
    else:
        nb.cells[4].metadata["nbgrader"] = dict(nb.cells[3].metadata.nbgrader)
    problems = assign.metadata_problems(nb, "nb.ipynb")
    assert len(problems) == 1 and "make grader-metadata" in problems[0]


def test_an_exercise_without_a_check_cell_is_an_error():
    nb = _nb()
    nb.cells = nb.cells[:3]
    with pytest.raises(ValueError, match="no check cell"):
        assign.expected_metadata(nb, "nb.ipynb")


def test_for_students_drops_outputs_counts_and_widget_state_but_keeps_sources():
    nb = assign.for_students(_nb())
    assert "widgets" not in nb.metadata
    assert all(c.outputs == [] and c.execution_count is None
               for c in nb.cells if c.cell_type == "code")
    assert BEGIN in nb.cells[1].source


def test_otter_master_has_a_config_and_one_question_per_exercise():
    nb = assign.for_otter(assign.with_grader_metadata(_nb()))
    sources = [c.source for c in nb.cells]
    assert nb.cells[0].cell_type == "raw" and sources[0].startswith("# ASSIGNMENT CONFIG")
    start = sources.index("# BEGIN QUESTION\nname: q1_1\npoints: 1")
    assert sources[start + 1:start + 4:2] == ["# BEGIN SOLUTION", "# END SOLUTION"]
    exercise = sources[start + 2]
    assert "    # BEGIN SOLUTION" in exercise and BEGIN not in exercise
    test = sources[start + 5]
    assert test.startswith("# HIDDEN") and "    check_add(add)" in test
    assert sources[start + 6:start + 8] == ["# END TESTS", "# END QUESTION"]
    assert "check_add(add)" in sources  # the student's own check cell stays
    assert all("nbgrader" not in c.metadata for c in nb.cells)


def test_answer_strings_are_the_values_and_the_solution_lines():
    nb = _nb()
    assert assign.answer_strings(nb) == {"1.1": ["return a + b"]}
    assert assign.leaks("x = 1\nreturn a + b", assign.answer_strings(nb)) == [
        "Exercise 1.1: 'return a + b'"]


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
    nb.cells.insert(3, new_markdown_cell("Hint: `return a + b`"))
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert assign.main(["--out", str(tmp_path / "out"), str(path)]) == 2
    assert "gives away Exercise 1.1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_assign_writes_every_graders_input_with_no_answer_for_students(tmp_path):
    out = tmp_path / "build"
    assert assign.main(["--out", str(out)] + [str(p) for p in MASTERS]) == 0
    assert (out / "nbgrader" / "nbgrader_config.py").is_file()
    for master in MASTERS:
        nb = nbformat.read(master, as_version=4)
        answers = assign.answer_strings(nb, master.name)
        student = (out / "student" / master.name).read_text(encoding="utf-8")
        assert assign.leaks(student, answers) == [], master.name
        for path in (out / "nbgrader" / "source" / master.stem / master.name,
                     out / "otter" / master.name):
            graded = nbformat.read(path, as_version=4)
            assert "widgets" not in graded.metadata
            assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")
        source = nbformat.read(out / "nbgrader" / "source" / master.stem / master.name, 4)
        assert assign.metadata_problems(source) == []


def test_the_files_checked_before_writing_are_the_files_written(tmp_path):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_nb(), path)
    out = tmp_path / "out"
    assert assign.main(["--out", str(out), str(path)]) == 0
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == {*assign.destinations(out, path), out / "nbgrader" / "nbgrader_config.py"}
