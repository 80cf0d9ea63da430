"""Student versions of the real notebooks fail only with NotImplementedError, at exercises.

For every notebook in ``notebooks/`` with exercises (found when the tests are
collected):

(a) the student version, executed, stops first with a ``NotImplementedError``
    naming the first exercise, raised in its cell (or in its check cell, when the
    exercise is a function body that the check calls), every cell before it
    having run without error;
(b) for each exercise k, the master with only exercise k blanked runs every
    cell up to k and fails there with k's ``NotImplementedError``. One kernel per
    notebook does all k: each exercise cell is run blanked (must raise) and then
    with its solution, and the run stops after the last exercise cell, so the
    cost is at most one run of the master;
(c) each exercise cell is followed by a check cell (the next code cell) calling
    a function from ``vaelab.exercises`` (that the checks pass is nbval's job).

Kernels get TQDM_DISABLE=1 and VAELAB_TRAIN_FRESH=1, as in ``make test``, and
the caller's VAELAB_DATA_DIR. ``VAELAB_TEST_NOTEBOOKS`` points the tests at
another folder (for developing them while the real notebooks are written).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest
from helpers import calls_into
from nbclient.exceptions import CellExecutionError

from vaelab.tooling.execute import execute_notebook, make_client
from vaelab.tooling.nbcode import called_names
from vaelab.tooling.student import blank_exercises, find_exercises, make_student

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = Path(os.environ.get("VAELAB_TEST_NOTEBOOKS", ROOT / "notebooks"))
CELL_TIMEOUT = 300  # the same per-cell limit as the nbval run


def _with_exercises() -> list[Path]:
    # Any marker-like text counts: a notebook with broken markers must fail here, not vanish.
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        if "SOLUTION" in text or "# Exercise " in text:
            found.append(path)
    return found


PATHS = _with_exercises()
PARAMS = [pytest.param(p, id=p.name) for p in PATHS] or [
    pytest.param(None, marks=pytest.mark.skip(reason=f"no notebook with exercises in {NOTEBOOKS}"))
]


@pytest.fixture(autouse=True)
def _kernel_env(monkeypatch):
    # Kernels inherit os.environ: the settings of make test / make outputs.
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("VAELAB_TRAIN_FRESH", "1")


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _error_outputs(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _check_cell(nb, exercise) -> int | None:
    """Index of the first code cell after the exercise cell: where its check belongs."""
    for index in range(exercise.cell_index + 1, len(nb.cells)):
        if nb.cells[index].cell_type == "code":
            return index
    return None


@pytest.mark.slow
@pytest.mark.parametrize("path", PARAMS)
def test_student_version_stops_first_at_an_exercise_with_not_implemented(path):
    master = _read(path)
    exercises = find_exercises(master, str(path))
    assert exercises, f"{path.name}: marker-like text but no exercise found"
    first = exercises[0]
    outcome = execute_notebook(make_student(master, str(path)), path.parent, CELL_TIMEOUT)

    assert not outcome.ok, f"{path.name}: the student version ran to the end without an error"
    allowed = (first.cell_index, _check_cell(master, first))
    assert outcome.failed_cell in allowed, (
        f"{path.name}: first error in cell {outcome.failed_cell} ({outcome.error}), "
        f"expected the first exercise's cell or check cell {allowed} (Exercise {first.id})"
    )
    (error,) = _error_outputs(outcome.nb.cells[outcome.failed_cell])
    assert error["ename"] == "NotImplementedError", outcome.error
    assert error["evalue"].startswith(f"Exercise {first.id}:"), error["evalue"]
    assert "raise NotImplementedError" in outcome.nb.cells[first.cell_index].source
    for index, cell in enumerate(outcome.nb.cells[: outcome.failed_cell]):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        assert cell.execution_count is not None, f"{path.name}: cell {index} did not run"
        if "raises-exception" not in _tags(cell):
            assert not _error_outputs(cell), f"{path.name}: cell {index} raised before exercise"


def _run_expecting_error(client, cell, index) -> CellExecutionError | None:
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as exc:
        return exc
    return None


@pytest.mark.slow
@pytest.mark.parametrize("path", PARAMS)
def test_each_exercise_blanked_alone_fails_there_after_the_cells_before_ran(path):
    master = _read(path)
    exercises = find_exercises(master, str(path))
    by_cell = {e.cell_index: e for e in exercises}
    last = max(by_cell)
    work = copy.deepcopy(master)
    client = make_client(work, path.parent, CELL_TIMEOUT)
    reached = []
    with client.setup_kernel():
        for index in range(last + 1):
            cell = work.cells[index]
            if index in by_cell:
                exercise = by_cell[index]
                blank = blank_exercises(master, only=[exercise.id]).cells[index]
                error = _run_expecting_error(client, blank, index)
                if error is None:
                    # A blanked function body raises when its check cell calls it.
                    check = _check_cell(master, exercise)
                    assert check is not None, f"{path.name}: no cell after Exercise {exercise.id}"
                    error = _run_expecting_error(client, copy.deepcopy(work.cells[check]), check)
                assert error is not None, (
                    f"{path.name}: Exercise {exercise.id} blanked raised nothing in its cell "
                    "or its check cell"
                )
                assert error.ename == "NotImplementedError", (
                    f"{path.name}: Exercise {exercise.id} blanked raised {error.ename}: "
                    f"{error.evalue}"
                )
                assert error.evalue.startswith(f"Exercise {exercise.id}:"), error.evalue
                reached.append(exercise.id)
            # The master cell (solution in place); an unexpected error fails the test here.
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                pytest.fail(f"{path.name}: master cell {index} raised {exc.ename}: {exc.evalue}")
    assert reached == [e.id for e in exercises]


@pytest.mark.parametrize("path", PARAMS)
def test_every_exercise_is_followed_by_a_check_cell_calling_vaelab_exercises(path):
    master = _read(path)
    names = called_names(master)
    for exercise in find_exercises(master, str(path)):
        check = _check_cell(master, exercise)
        assert check is not None, f"{path.name}: Exercise {exercise.id} has no code cell after it"
        assert calls_into(names[check], "vaelab.exercises"), (
            f"{path.name}: cell {check} after Exercise {exercise.id} (cell "
            f"{exercise.cell_index}) calls no check function from vaelab.exercises"
        )
        assert "### BEGIN SOLUTION" not in master.cells[check].source
