"""The student notebooks the package ships: current, answer-free, and copied out without a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import solution_lines

from vaelab.student_notebooks import shipped_notebooks, write_new_notebooks, write_student_notebooks
from vaelab.tooling import student

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHIPPED = ROOT / "src" / "vaelab" / "student_notebooks"


def test_shipped_copies_are_what_make_student_notebooks_writes_now(tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert student.main(["--ship", str(fresh), *map(str, MASTERS)]) == 0
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(fresh.glob("*.ipynb"))}
    assert list(expected) == [m.name for m in MASTERS]
    stale = [name for name in expected if shipped_notebooks().get(name) != expected[name]]
    extra = sorted(set(shipped_notebooks()) - set(expected))
    assert not stale and not extra, (
        f"the student notebooks in {SHIPPED.relative_to(ROOT)} are behind the masters "
        f"(stale: {stale}, without a master: {extra}); run `make student-notebooks` and commit")


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.name)
def test_shipped_copy_holds_no_solution_line_and_no_output(master):
    text = shipped_notebooks()[master.name]
    leaked = sorted(line for line in solution_lines(master) if line in text)
    assert not leaked, f"{master.name}: the shipped student copy contains solution lines {leaked}"
    assert "### BEGIN SOLUTION" not in text
    nb = nbformat.reads(text, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_write_student_notebooks_copies_once_and_keeps_a_students_work(tmp_path, capsys):
    written = write_student_notebooks(tmp_path)
    assert sorted(p.name for p in written) == [m.name for m in MASTERS] and all(written.values())
    mine = tmp_path / MASTERS[0].name
    assert mine.read_text(encoding="utf-8") == shipped_notebooks()[mine.name]
    mine.write_text("my work")
    again = write_student_notebooks(tmp_path)
    assert again[mine] is False and mine.read_text() == "my work"
    assert f"{mine}: kept" in capsys.readouterr().out


def test_a_folder_that_cannot_be_written_is_refused_before_anything_is_written(tmp_path):
    from vaelab.files import OutputPathError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        write_new_notebooks(blocker, {"a.ipynb": "{}"})


def test_command_works_in_the_current_folder_without_the_tooling_packages(tmp_path):
    # A student's install has no nbformat: the command must not need it.
    block = "import sys; sys.modules['nbformat'] = None; sys.modules['nbclient'] = None\n"
    code = block + "from vaelab.student_notebooks import main; raise SystemExit(main())"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.name for m in MASTERS]
    bad = subprocess.run([sys.executable, "-m", "vaelab.student_notebooks", "a", "b"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "usage" in bad.stderr
