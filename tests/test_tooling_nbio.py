"""Notebook reading errors and Jupyter's serialization, shared by the tooling commands."""

from __future__ import annotations

import json

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
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    del nb.cells[0]["source"]  # valid JSON, but no cell Jupyter writes
    (tmp_path / "c.ipynb").write_text(json.dumps(nb))
    with pytest.raises(nbio.NotebookInputError, match=r"malformed notebook \(cells\[0\]: "
                                                      r"'source' is a required property\)"):
        nbio.read_notebook(tmp_path / "c.ipynb")


def test_read_and_serialize_round_trip(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    path = tmp_path / "n.ipynb"
    path.write_text(nbio.notebook_text(nb))
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n "cells"')  # Jupyter's own layout
    assert nbio.read_notebook(path).cells[0].source == "x = 1"


def test_notebook_text_is_what_nbformat_writes(tmp_path):
    nb = new_notebook(cells=[new_code_cell("y = 2")])
    nbformat.write(nb, tmp_path / "ref.ipynb")
    assert nbio.notebook_text(nb) == (tmp_path / "ref.ipynb").read_text()


def test_wrong_types_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="path must be the path"):
        nbio.read_notebook(None)
    with pytest.raises(TypeError, match="nb must be a notebook"):
        nbio.notebook_text({})  # was serialized to "{}", a file Jupyter cannot open
    assert list(tmp_path.iterdir()) == []


