"""Student-version generator on synthetic masters: replacement, clearing, bad markers."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from vaelab.tooling import student

TOP = """# Exercise 1.1: the sample mean
x = [1.0, 2.0, 3.0]
### BEGIN SOLUTION
mu = sum(x) / len(x)
### END SOLUTION
print(mu)"""

IN_FUNCTION = """# Exercise 1.2: the "biased" standard deviation
def mle_sigma(x):
    m = sum(x) / len(x)
    ### BEGIN SOLUTION
    return (sum((v - m) ** 2 for v in x) / len(x)) ** 0.5
    ### END SOLUTION"""

TWO_REGIONS = """# Exercise 1.3: two parts
class Model:
    def fit(self, x):
        ### BEGIN SOLUTION
        self.mu = sum(x) / len(x)
        ### END SOLUTION
        return self

    def sample(self):
            ### BEGIN SOLUTION
            return self.mu
            ### END SOLUTION"""


def _executed(source: str, tags=(), count=1) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = [new_output("stream", name="stdout", text="2.0\n")]
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    return cell


def _master() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell("# Demo\nRuns in 1 s."),
        _executed("from vaelab.seeding import seed_everything\nrng = seed_everything(0)", count=1),
        _executed(TOP, count=2),
        _executed("check_mean(mu)", tags=["nbval-ignore-output"], count=3),
        _executed(IN_FUNCTION, count=4),
        _executed("check_sigma(mle_sigma)", count=5),
        _executed(TWO_REGIONS, tags=["raises-exception"], count=6),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_find_exercises_reads_ids_titles_cells_and_regions():
    found = student.find_exercises(_master())
    assert [(e.id, e.title, e.cell_index) for e in found] == [
        ("1.1", "the sample mean", 2),
        ("1.2", 'the "biased" standard deviation', 4),
        ("1.3", "two parts", 6),
    ]
    assert [len(e.regions) for e in found] == [1, 1, 2]
    assert found[2].regions[1].indent == " " * 12


def test_regions_are_replaced_at_the_begin_markers_indentation():
    nb = student.make_student(_master())
    assert nb.cells[2].source == (
        "# Exercise 1.1: the sample mean\nx = [1.0, 2.0, 3.0]\n"
        'raise NotImplementedError("Exercise 1.1: the sample mean - write your code here")\n'
        "print(mu)"
    )
    assert nb.cells[4].source.splitlines()[-1] == (
        '    raise NotImplementedError("Exercise 1.2: the \\"biased\\" standard deviation'
        ' - write your code here")'
    )
    lines = nb.cells[6].source.splitlines()
    stub = "Exercise 1.3: two parts - write your code here"
    assert f'        raise NotImplementedError("{stub}")' in lines
    assert f'            raise NotImplementedError("{stub}")' in lines
    assert "BEGIN SOLUTION" not in nbformat.writes(nb) and "END SOLUTION" not in nbformat.writes(nb)


def test_student_code_compiles_and_raises_the_named_error():
    nb = student.make_student(_master())
    with pytest.raises(NotImplementedError, match=r"^Exercise 1\.1: the sample mean"):
        exec(nb.cells[2].source, {})
    namespace: dict = {}
    exec(nb.cells[4].source, namespace)  # defining the function works
    with pytest.raises(NotImplementedError, match=r'^Exercise 1\.2: the "biased"'):
        namespace["mle_sigma"]([1.0, 2.0])
    exec(nb.cells[6].source, namespace)
    with pytest.raises(NotImplementedError, match=r"^Exercise 1\.3"):
        namespace["Model"]().fit([1.0])


def test_outputs_and_counts_cleared_tags_and_ids_kept():
    master = _master()
    nb = student.make_student(master)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata
    assert nb.cells[3].metadata["tags"] == ["nbval-ignore-output"]
    assert nb.cells[6].metadata["tags"] == ["raises-exception"]
    assert [c.id for c in nb.cells] == [c.id for c in master.cells]
    assert "widgets" not in nb.metadata
    nbformat.validate(nb)


def test_make_student_does_not_modify_its_argument():
    master = _master()
    before = nbformat.writes(master)
    student.make_student(master)
    assert nbformat.writes(master) == before


def test_blank_exercises_can_blank_one_exercise_only():
    nb = student.blank_exercises(_master(), only=["1.2"])
    assert "### BEGIN SOLUTION" in nb.cells[2].source
    assert "NotImplementedError" in nb.cells[4].source
    assert "### BEGIN SOLUTION" in nb.cells[6].source
    assert nb.cells[4].outputs  # outputs are left alone here
    with pytest.raises(ValueError, match=r"no exercise \['9.9'\]"):
        student.blank_exercises(_master(), only=["9.9"])


def test_notebook_without_exercises_is_fine():
    nb = new_notebook(cells=[new_code_cell("print('# Exercise in a string is not a marker')")])
    assert student.find_exercises(nb) == []
    assert student.make_student(nb).cells[0].source == nb.cells[0].source


# Each bad master: (cells, the cell index named, the exercise id named or None, words).
BAD = {
    "unclosed": (
        [new_code_cell("# Exercise 2.1: a\n### BEGIN SOLUTION\nx = 1")], 0, "2.1", "never closed",
    ),
    "end_without_begin": (
        [new_code_cell("ok = 1"), new_code_cell("# Exercise 2.1: a\nx = 1\n### END SOLUTION")],
        1, "2.1", "without a",
    ),
    "nested": (
        [new_code_cell("# Exercise 2.1: a\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n"
                       "x = 1\n### END SOLUTION\n### END SOLUTION")], 0, "2.1", "nested",
    ),
    "marker_in_markdown": (
        [new_markdown_cell("Intro"), new_markdown_cell("### BEGIN SOLUTION\nsecret")],
        1, None, "markdown cell",
    ),
    "marker_in_raw": (
        [new_raw_cell("### END SOLUTION")], 0, None, "raw cell",
    ),
    "no_exercise_line": (
        [new_code_cell("a = 1"), new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")],
        1, None, "without an '# Exercise N.M",
    ),
    "exercise_line_inside_region": (
        [new_code_cell("### BEGIN SOLUTION\n# Exercise 2.1: a\nx = 1\n### END SOLUTION")],
        0, "2.1", "inside the solution region",
    ),
    "duplicate_id": (
        [new_code_cell("# Exercise 2.1: a\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
         new_code_cell("# Exercise 2.1: b\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION")],
        1, "2.1", "duplicate exercise id, already used in cell 0",
    ),
    "misspelt_marker": (
        [new_code_cell("# Exercise 2.1: a\n## BEGIN SOLUTIONS\nx = 1\n### END SOLUTION")],
        0, "2.1", "malformed marker",
    ),
    "exercise_without_region": (
        [new_code_cell("# Exercise 2.1: a\nx = 1  # the answer, unmarked")],
        0, "2.1", "the solution would reach students",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_markers_name_notebook_and_cell_and_nothing_is_written(tmp_path, capsys, case):
    cells, index, exercise_id, words = BAD[case]
    masters = tmp_path / "notebooks"
    masters.mkdir()
    good = masters / "01_good.ipynb"
    nbformat.write(_master(), good)
    bad = masters / "02_bad.ipynb"
    nbformat.write(new_notebook(cells=cells), bad)
    before = {p: p.read_bytes() for p in (good, bad)}

    out = tmp_path / "build"
    assert student.main(["--out", str(out), str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    label = f"cell {index}" + (f" (Exercise {exercise_id})" if exercise_id else "")
    assert f"{bad}, {label}:" in err, err
    assert words in err
    assert "nothing written" in err
    assert not out.exists()  # not even the good notebook's versions
    assert {p: p.read_bytes() for p in (good, bad)} == before
    with pytest.raises(student.MarkerError):
        student.find_exercises(nbformat.read(bad, as_version=4))


def test_cli_writes_student_and_instructor_versions(tmp_path, capsys):
    masters = tmp_path / "notebooks"
    masters.mkdir()
    path = masters / "01_demo.ipynb"
    nbformat.write(_master(), path)
    other = masters / "02_plain.ipynb"
    nbformat.write(new_notebook(cells=[_executed("print(2.0)")]), other)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns

    out = tmp_path / "build"
    assert student.main(["--out", str(out), str(path), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("01_demo.ipynb") and " 3 exercises" in lines[0]
    assert lines[1].startswith("02_plain.ipynb") and " 0 exercises" in lines[1]

    assert (out / "instructor" / "01_demo.ipynb").read_bytes() == before
    stud = nbformat.read(out / "student" / "01_demo.ipynb", as_version=4)
    assert nbformat.writes(stud) == nbformat.writes(student.make_student(_load(path)))
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    plain = nbformat.read(out / "student" / "02_plain.ipynb", as_version=4)
    assert plain.cells[0].outputs == []


def _load(path):
    return nbformat.read(path, as_version=4)


def test_cli_refuses_missing_paths_and_output_over_a_master(tmp_path, capsys):
    assert student.main(["--out", str(tmp_path / "b"), str(tmp_path / "no.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    folder = tmp_path / "student"
    folder.mkdir()
    path = folder / "01_demo.ipynb"
    nbformat.write(_master(), path)
    before = path.read_bytes()
    assert student.main(["--out", str(tmp_path), str(path)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_workspace_gets_student_versions_once_and_keeps_a_students_work(tmp_path, capsys):
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(_master(), path)
    work = tmp_path / "my-notebooks"
    assert student.main(["--workspace", str(work), str(path)]) == 0
    mine = work / "01_demo.ipynb"
    assert nbformat.writes(_load(mine)) == nbformat.writes(student.make_student(_load(path)))
    mine.write_text(mine.read_text(encoding="utf-8").replace("NotImplementedError", "Done"))
    edited = mine.read_bytes()
    assert student.main(["--workspace", str(work), str(path)]) == 0
    assert mine.read_bytes() == edited
    assert "kept" in capsys.readouterr().out.splitlines()[-1]
    assert not (tmp_path / "student").exists() and not (tmp_path / "instructor").exists()


def test_reveal_cells_are_left_out_of_the_student_version():
    nb = _master()
    reveal = new_code_cell("show_source(mu)", metadata={"tags": [student.REVEAL]})
    nb.cells.append(reveal)
    out = student.make_student(nb)
    assert len(out.cells) == len(nb.cells) - 1
    assert all("show_source" not in c.source for c in out.cells)
    assert any("show_source" in c.source for c in nb.cells)  # the master keeps it


def test_a_reveal_tag_on_an_exercise_is_an_error():
    nb = _master()
    exercise = next(c for c in nb.cells if "# Exercise" in c.source)
    exercise.metadata["tags"] = [student.REVEAL]
    with pytest.raises(student.MarkerError, match="tagged 'reveal' but holds an exercise"):
        student.make_student(nb, "nb.ipynb")


def test_ship_replaces_the_copies_and_removes_notebooks_without_a_master(tmp_path, capsys):
    masters, shipped = tmp_path / "masters", tmp_path / "shipped"
    masters.mkdir()
    shipped.mkdir()
    path = masters / "01_demo.ipynb"
    nbformat.write(_master(), path)
    (shipped / "01_demo.ipynb").write_text("old copy")
    (shipped / "09_renamed.ipynb").write_text("a master that is gone")
    (shipped / "__init__.py").write_text("")
    assert student.main(["--ship", str(shipped), str(path)]) == 0
    assert nbformat.writes(_load(shipped / "01_demo.ipynb")) == nbformat.writes(
        student.make_student(_load(path)))
    assert sorted(p.name for p in shipped.iterdir()) == ["01_demo.ipynb", "__init__.py"]
    assert "removed" in capsys.readouterr().out


def test_ship_refuses_the_masters_folder(tmp_path, capsys):
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(_master(), path)
    before = path.read_bytes()
    assert student.main(["--ship", str(tmp_path), str(path)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_workspace_that_cannot_be_written_says_so_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(_master(), path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert student.main(["--workspace", str(blocker), str(path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
