"""Static rules every committed notebook keeps (docs/notebook-conventions.md).

No kernel runs here: these read the stored notebooks. The one that matters most
is the execution-count check: nbval skips cells without a count, so a stripped
or half-executed notebook would quietly turn the regression run into a smoke test.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from helpers import calls_into

from vaelab.tooling.nbcode import called_names
from vaelab.tooling.student import find_exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PARAMS = [pytest.param(p, id=p.name) for p in NOTEBOOKS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no notebooks yet"))
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IGNORED_OUTPUT = {"nbval-ignore-output", "raises-exception"}
RUN_TIME = re.compile(r"\b\d+(\.\d+)?\s*(s|sec|secs|seconds?|min|mins|minutes?)\b", re.IGNORECASE)
RUN_WORDS = re.compile(r"\b(run|runs|running|execut\w*|takes)\b", re.IGNORECASE)


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _code(nb) -> list[tuple[int, object]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


@pytest.mark.parametrize("path", PARAMS)
def test_name_is_number_and_topic(path):
    assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name), (
        f"{path.name}: name notebooks NN_topic.ipynb (two digits, lower-case words and _)"
    )


@pytest.mark.parametrize("path", PARAMS)
def test_first_cell_is_markdown_stating_the_run_time(path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    assert RUN_TIME.search(first.source) and RUN_WORDS.search(first.source), (
        f"{path.name}: the first cell must state the expected run time "
        "(for example 'Runs in about 20 s on a 2-core laptop CPU')"
    )


@pytest.mark.parametrize("path", PARAMS)
def test_first_code_cell_calls_seed_everything(path):
    nb = _read(path)
    index, _ = _code(nb)[0]
    assert "vaelab.seeding.seed_everything" in called_names(nb)[index], (
        f"{path.name}: the first code cell (cell {index}) must call "
        "`from vaelab.seeding import seed_everything; rng = seed_everything(0)`"
    )


@pytest.mark.parametrize("path", PARAMS)
def test_every_code_cell_was_executed_in_order(path):
    cells = _code(_read(path))
    empty = [i for i, c in cells if not c.source.strip()]
    assert not empty, f"{path.name}: empty code cells {empty}; delete them"
    counts = [c.execution_count for _, c in cells]
    missing = [i for i, c in cells if c.execution_count is None]
    assert not missing, (
        f"{path.name}: cells {missing} have no execution count (nbval would skip them); "
        f"store outputs with: python -m vaelab.tooling.execute --in-place notebooks/{path.name}"
    )
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..{len(cells)} in order; "
        "re-execute the notebook with python -m vaelab.tooling.execute --in-place"
    )


@pytest.mark.parametrize("path", PARAMS)
def test_no_path_hacks_or_installs(path):
    for index, cell in _code(_read(path)):
        for line in cell.source.splitlines():
            assert "sys.path" not in line, f"{path.name}: cell {index} edits sys.path"
            assert not re.match(r"\s*[%!]\s*(pip|conda|mamba)\b", line), (
                f"{path.name}: cell {index} installs packages ({line.strip()}); "
                "requirements.txt is the one place for dependencies"
            )


@pytest.mark.parametrize("path", PARAMS)
def test_no_stderr_in_checked_cells(path):
    for index, cell in _code(_read(path)):
        if _tags(cell) & IGNORED_OUTPUT:
            continue
        for out in cell.outputs:
            assert not (out.get("output_type") == "stream" and out.get("name") == "stderr"), (
                f"{path.name}: cell {index} writes to stderr: {out.get('text', '')[:200]!r}; "
                "fix or filter the warning at its source"
            )


def _is_plot(cell, names: set[str]) -> bool:
    shows = "matplotlib.pyplot.show" in names or calls_into(names, "vaelab.plots")
    images = any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for out in cell.get("outputs", [])
    )
    return shows or images


def _is_widget(cell, names: set[str]) -> bool:
    # A widget cell shows a widget view, or calls a widget builder without drawing a
    # figure (vaelab.widgets modules also hold the static figure of each widget).
    views = any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))
    builds = calls_into(names, "vaelab.widgets") or calls_into(names, "ipywidgets")
    return views or (builds and not _is_plot(cell, names))


@pytest.mark.parametrize("path", PARAMS)
def test_widget_cells_are_ignored_by_nbval_and_follow_a_static_figure(path):
    nb = _read(path)
    names = called_names(nb)
    code = _code(nb)
    for position, (index, cell) in enumerate(code):
        if not _is_widget(cell, names[index]):
            continue
        assert "nbval-ignore-output" in _tags(cell), (
            f"{path.name}: widget cell {index} must carry the tag nbval-ignore-output"
        )
        assert position > 0, f"{path.name}: widget cell {index} has no cell before it"
        previous, prev_cell = code[position - 1]
        assert _is_plot(prev_cell, names[previous]), (
            f"{path.name}: widget cell {index} must follow a cell drawing the same figure "
            f"statically (cell {previous} shows no plot)"
        )


@pytest.mark.parametrize("path", PARAMS)
def test_exercise_markers_are_valid_and_numbered_for_the_notebook(path):
    nb = _read(path)
    number = int(path.name[:2]) if path.name[:2].isdigit() else None
    for exercise in find_exercises(nb, path.name):  # raises MarkerError naming the cell
        assert exercise.id.split(".")[0] == str(number), (
            f"{path.name}: cell {exercise.cell_index} is Exercise {exercise.id}; exercises in "
            f"notebook {path.name[:2]} are numbered {number}.M"
        )
