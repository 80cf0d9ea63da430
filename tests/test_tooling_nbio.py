"""Notebook reading errors and atomic writes shared by the tooling commands."""

from __future__ import annotations

import os
import stat

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from vaelab.tooling import nbio


def test_read_notebook_names_the_problem(tmp_path):
    with pytest.raises(nbio.NotebookInputError, match="no such file"):
        nbio.read_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(nbio.NotebookInputError, match="not a file"):
        nbio.read_notebook(tmp_path)
    (tmp_path / "a.py").write_text("x = 1")
    with pytest.raises(nbio.NotebookInputError, match="expected a name ending in .ipynb"):
        nbio.read_notebook(tmp_path / "a.py")
    (tmp_path / "b.ipynb").write_text("[1, 2]")
    with pytest.raises(nbio.NotebookInputError, match="not a readable notebook"):
        nbio.read_notebook(tmp_path / "b.ipynb")


def test_read_and_serialize_round_trip(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    path = tmp_path / "n.ipynb"
    nbio.write_notebook_atomic(path, nb)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n "cells"')  # Jupyter's own layout
    assert nbio.read_notebook(path).cells[0].source == "x = 1"


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "n.ipynb"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        nbio.write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["n.ipynb"]


def test_atomic_write_keeps_permissions_and_creates_folders(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text("old")
    path.chmod(0o640)
    nbio.write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    deep = tmp_path / "a" / "b" / "c.html"
    nbio.write_text_atomic(deep, "<html>")
    assert deep.read_text() == "<html>"
    assert stat.S_IMODE(deep.stat().st_mode) & 0o600 == 0o600


def test_notebook_text_is_what_nbformat_writes(tmp_path):
    nb = new_notebook(cells=[new_code_cell("y = 2")])
    nbformat.write(nb, tmp_path / "ref.ipynb")
    assert nbio.notebook_text(nb) == (tmp_path / "ref.ipynb").read_text()


def test_wrong_types_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="path must be the path"):
        nbio.read_notebook(None)
    with pytest.raises(TypeError, match="nb must be a notebook"):
        nbio.notebook_text({})  # was serialized to "{}", a file Jupyter cannot open
    with pytest.raises(TypeError, match="text must be a str"):
        nbio.write_text_atomic(tmp_path / "t.txt", None)
    assert list(tmp_path.iterdir()) == []


def test_check_output_dir_and_writable_file_say_what_is_wrong(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert nbio.check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(nbio.OutputPathError, match="is a file, not a folder"):
        nbio.check_output_dir(tmp_path / "afile")
    with pytest.raises(nbio.OutputPathError, match="so no folder can be made under it"):
        nbio.check_output_dir(tmp_path / "afile" / "sub")
    with pytest.raises(nbio.OutputPathError, match="is a folder; it cannot be replaced"):
        nbio.check_writable_file(tmp_path)
    assert not (tmp_path / "new").exists()  # checking writes nothing
