"""The notebook executor (make run / make outputs) on tiny notebooks made here.

Kernel starts are the cost (seconds each on 2 busy cores), so one module-level
run of --out serves several assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vaelab.tooling import execute


def _write(path: Path, *cells) -> Path:
    nb = new_notebook(cells=list(cells))
    nbformat.write(nb, path)
    return path


def _good(path: Path) -> Path:
    return _write(
        path,
        new_markdown_cell("# tiny\nRuns in about 1 s."),
        new_code_cell("import os, sys\nprint(sys.executable)\nprint(os.getcwd())"),
        new_code_cell(""),
        new_code_cell("x = 6 * 7\nx"),
        new_code_cell("raise KeyError('on purpose')", metadata={"tags": ["raises-exception"]}),
        new_code_cell("print(f'{x / 7:.1f}')"),
    )


def _bad(path: Path) -> Path:
    return _write(
        path,
        new_code_cell("a = 1"),
        new_code_cell("1 / 0"),
        new_code_cell("print('never')"),
    )


@pytest.fixture(scope="module")
def out_run(tmp_path_factory):
    """One --out run over a good and a failing notebook in a folder of their own."""
    root = tmp_path_factory.mktemp("exec")
    src = root / "src"
    src.mkdir()
    good, bad = _good(src / "01_good.ipynb"), _bad(src / "02_bad.ipynb")
    before = {p.name: p.read_bytes() for p in (good, bad)}
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = execute.main(["--out", str(root / "build"), str(good), str(bad)])
    return {"rc": rc, "stdout": buf.getvalue(), "root": root, "src": src, "before": before}


@pytest.mark.slow
def test_out_mode_prints_one_line_per_notebook_and_exits_1_on_a_failure(out_run):
    lines = out_run["stdout"].splitlines()
    assert len(lines) == 2, lines
    assert lines[0].split()[:2] == ["ok", "01_good.ipynb"]
    assert lines[0].rstrip().endswith(" s")
    assert lines[1].split()[:2] == ["FAIL", "02_bad.ipynb"]
    assert "cell 1: ZeroDivisionError: division by zero" in lines[1]
    assert out_run["rc"] == 1


@pytest.mark.slow
def test_out_mode_writes_executed_notebook_and_html_and_leaves_sources_alone(out_run):
    build = out_run["root"] / "build"
    assert sorted(p.name for p in build.iterdir()) == [
        "01_good.html", "01_good.ipynb", "02_bad.html", "02_bad.ipynb",
    ]
    for name, data in out_run["before"].items():
        assert (out_run["src"] / name).read_bytes() == data, f"{name} was modified"
    html = (build / "01_good.html").read_text()
    assert "<html" in html and "6.0" in html


@pytest.mark.slow
def test_kernel_is_this_interpreter_started_in_the_notebooks_folder(out_run):
    nb = nbformat.read(out_run["root"] / "build" / "01_good.ipynb", as_version=4)
    exe, cwd = nb.cells[1].outputs[0]["text"].splitlines()
    assert exe == sys.executable
    assert Path(cwd).resolve() == out_run["src"].resolve()


@pytest.mark.slow
def test_executed_notebook_is_stable_counts_in_order_no_timing(out_run):
    nb = nbformat.read(out_run["root"] / "build" / "01_good.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code if c.source.strip()]
    assert counts == [1, 2, 3, 4]
    empty = code[1]
    assert empty.execution_count is None and empty.outputs == []
    assert all("execution" not in c.metadata for c in nb.cells)
    assert code[2].outputs[0]["data"]["text/plain"] == "42"
    assert code[3].outputs[0]["output_type"] == "error"  # raises-exception: allowed, kept
    assert code[4].outputs[0]["text"] == "6.0\n"
    src = nbformat.read(out_run["src"] / "01_good.ipynb", as_version=4)
    assert [c.id for c in nb.cells] == [c.id for c in src.cells]


@pytest.mark.slow
def test_failed_notebook_shows_how_far_it_got(out_run):
    nb = nbformat.read(out_run["root"] / "build" / "02_bad.ipynb", as_version=4)
    assert nb.cells[1].outputs[-1]["ename"] == "ZeroDivisionError"
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None


@pytest.mark.slow
def test_in_place_failure_leaves_the_source_byte_for_byte(tmp_path, capsys):
    bad = _bad(tmp_path / "02_bad.ipynb")
    before = bad.read_bytes()
    assert execute.main(["--in-place", str(bad)]) == 1
    assert capsys.readouterr().out.startswith("FAIL  02_bad.ipynb")
    assert bad.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["02_bad.ipynb"]  # no temp files


@pytest.mark.slow
def test_in_place_success_stores_outputs_and_a_rerun_changes_nothing(tmp_path, capsys):
    good = _good(tmp_path / "01_good.ipynb")
    assert execute.main(["--in-place", str(good)]) == 0
    first = good.read_text()
    nb = json.loads(first)
    assert [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"] == [
        1, None, 2, 3, 4,
    ]
    assert execute.main(["--in-place", str(good)]) == 0
    assert good.read_text() == first
    assert capsys.readouterr().out.count("ok    01_good.ipynb") == 2


@pytest.mark.slow
def test_per_cell_timeout_fails_the_notebook(tmp_path, capsys):
    slow = _write(tmp_path / "03_slow.ipynb", new_code_cell("import time\ntime.sleep(60)"))
    assert execute.main(["--timeout", "2", "--out", str(tmp_path / "b"), str(slow)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("FAIL  03_slow.ipynb") and "cell 0: CellTimeoutError" in line


def test_missing_path_exits_2_with_a_message_and_runs_nothing(tmp_path, capsys):
    good = _good(tmp_path / "01_good.ipynb")
    missing = tmp_path / "nope.ipynb"
    rc = execute.main(["--out", str(tmp_path / "build"), str(good), str(missing)])
    err = capsys.readouterr()
    assert rc == 2
    assert f"{missing}: no such file" in err.err
    assert err.out == ""
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", "hello", "not a notebook"),
        ("broken.ipynb", "{not json", "not a readable notebook"),
        ("nosource.ipynb", json.dumps({
            "cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {},
                       "outputs": []}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
         "a malformed notebook (cells[0]: 'source' is a required property)"),
    ],
)
def test_a_file_that_is_not_a_notebook_exits_2(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    for argv in (["--in-place", str(path)], ["--out", str(tmp_path / "b"), str(path)]):
        assert execute.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert path.read_text() == content and sorted(tmp_path.iterdir()) == [path]


def test_out_and_in_place_are_exclusive_and_one_is_required(tmp_path):
    for argv in (["x.ipynb"], ["--in-place", "--out", "b", "x.ipynb"]):
        with pytest.raises(SystemExit) as info:
            execute.main(argv)
        assert info.value.code == 2


def test_normalize_renumbers_widget_ids_deterministically():
    def executed(ids):
        nb = new_notebook(cells=[new_code_cell("w", id="cell-1")])
        nb.cells[0].outputs = [nbformat.v4.new_output(
            "display_data",
            data={execute.WIDGET_VIEW_KEY: {"model_id": ids[1], "version_major": 2,
                                            "version_minor": 0}, "text/plain": "Slider"},
        )]
        nb.cells[0].metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
        nb.metadata["widgets"] = {execute.WIDGET_STATE_KEY: {"state": {
            ids[0]: {"model_name": "LayoutModel", "state": {}},
            ids[1]: {"model_name": "FloatSliderModel", "state": {"layout": f"IPY_MODEL_{ids[0]}"}},
        }, "version_major": 2, "version_minor": 0}}
        return execute.normalize(nb, "01_x.ipynb")

    a = executed(["a" * 32, "b" * 32])
    b = executed(["c" * 32, "d" * 32])
    assert nbformat.writes(a) == nbformat.writes(b)  # random ids no longer show in the file
    state = a.metadata["widgets"][execute.WIDGET_STATE_KEY]["state"]
    layout_id, slider_id = list(state)
    assert state[slider_id]["state"]["layout"] == f"IPY_MODEL_{layout_id}"
    assert a.cells[0].outputs[0]["data"][execute.WIDGET_VIEW_KEY]["model_id"] == slider_id
    assert "execution" not in a.cells[0].metadata


def test_normalize_drops_huge_widget_state(monkeypatch, capsys):
    monkeypatch.setattr(execute, "MAX_WIDGET_STATE_BYTES", 10)
    nb = new_notebook()
    nb.metadata["widgets"] = {execute.WIDGET_STATE_KEY: {"state": {"e" * 32: {"x": "y" * 50}}}}
    execute.normalize(nb, "01_x.ipynb")
    assert "widgets" not in nb.metadata
    assert "widget state over 10 bytes not stored" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Destinations are checked before any notebook runs; a failed write is reported, not raised


def _never_run(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a notebook was executed although the destination is unusable")

    monkeypatch.setattr(execute, "execute_notebook", fail)


@pytest.mark.parametrize(
    ("out", "message"),
    [("afile", "afile is a file, not a folder"),
     ("afile/sub", "is a file, so no folder can be made under it")],
)
def test_out_that_is_or_lies_under_a_file_exits_2_before_running(tmp_path, capsys, monkeypatch,
                                                                 out, message):
    _never_run(monkeypatch)
    (tmp_path / "afile").write_text("x")
    good = _good(tmp_path / "01_good.ipynb")
    assert execute.main(["--out", str(tmp_path / out), str(good)]) == 2
    err = capsys.readouterr()
    assert err.err.startswith("error: ") and message in err.err and err.out == ""


def test_out_where_a_result_would_replace_a_folder_exits_2(tmp_path, capsys, monkeypatch):
    _never_run(monkeypatch)
    good = _good(tmp_path / "01_good.ipynb")
    (tmp_path / "build" / "01_good.html").mkdir(parents=True)
    assert execute.main(["--out", str(tmp_path / "build"), str(good)]) == 2
    assert "01_good.html is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["read-only out", "missing out under read-only",
                                  "read-only notebook in place"])
def test_unwritable_destination_exits_2_before_running(tmp_path, unprivileged, mode):
    src = tmp_path / "src"
    src.mkdir()
    # Executing it would leave a file behind: its absence shows nothing ran.
    nb = _write(src / "01_mark.ipynb", new_code_cell("open('ran', 'w').close()"))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    if mode == "read-only notebook in place":
        nb.chmod(0o444)
        argv = ["--in-place", str(nb)]
    else:
        out = tmp_path / "ro" / ("" if mode == "read-only out" else "build")
        argv = ["--out", str(out), str(nb)]
    run = subprocess.run([*unprivileged, sys.executable, "-m", "vaelab.tooling.execute", *argv],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert "not writable" in run.stderr or "read-only" in run.stderr
    assert not (src / "ran").exists() and list((tmp_path / "ro").iterdir()) == []


def _fake_run(monkeypatch, outcome_error=None):
    def fake(nb, cwd, timeout=0, name=""):
        return execute.Outcome(nb, 0.1, outcome_error)

    monkeypatch.setattr(execute, "execute_notebook", fake)


def test_a_write_that_fails_during_the_run_is_reported_and_the_rest_still_run(
        tmp_path, capsys, monkeypatch):
    _fake_run(monkeypatch)
    first, second = _bad(tmp_path / "01_a.ipynb"), _bad(tmp_path / "02_b.ipynb")
    real_write = execute.write_text_atomic

    def full_disk(path, text):
        if Path(path).stem == "01_a":
            raise OSError(28, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(execute, "write_text_atomic", full_disk)
    assert execute.main(["--out", str(tmp_path / "b"), str(first), str(second)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("FAIL  01_a.ipynb") and "not saved: [Errno 28]" in lines[0]
    assert lines[1].startswith("ok    02_b.ipynb")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["02_b.html", "02_b.ipynb"]


def test_interrupt_exits_130_with_a_message(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "execute_notebook", interrupted)
    assert execute.main(["--out", str(tmp_path / "b"), str(_bad(tmp_path / "a.ipynb"))]) == 130
    assert capsys.readouterr().err.startswith("error: interrupted")
