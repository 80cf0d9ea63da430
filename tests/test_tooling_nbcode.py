"""Resolving what notebook cells call through their imports."""

from __future__ import annotations

from helpers import calls_into
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vaelab.tooling.nbcode import called_names, parse_cell


def test_calls_are_resolved_through_imports_in_cell_order():
    nb = new_notebook(cells=[
        new_code_cell("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                      "from vaelab.seeding import seed_everything\nrng = seed_everything(0)"),
        new_markdown_cell("plt.show()"),
        new_code_cell("fig, ax = plt.subplots()\nplt.show()"),
        new_code_cell("from vaelab.exercises import mle as ex\nex.check_mle(mu=1.0)"),
        new_code_cell("import vaelab.widgets.likelihood\nvaelab.widgets.likelihood.explorer()"),
        new_code_cell("from vaelab.widgets.likelihood import explorer as ex2\nprint(ex2())"),
        new_code_cell("this is not python ("),
    ])
    names = called_names(nb)
    assert "vaelab.seeding.seed_everything" in names[0]
    assert names[1] == set()
    assert names[2] == {"matplotlib.pyplot.subplots", "matplotlib.pyplot.show"}
    assert names[3] == {"vaelab.exercises.mle.check_mle"}
    assert calls_into(names[4], "vaelab.widgets")
    assert names[5] == {"vaelab.widgets.likelihood.explorer", "print"}
    assert names[6] == set()
    assert not calls_into(names[2], "vaelab.widgets")
    assert not calls_into({"vaelab.widgetsx.f"}, "vaelab.widgets")


def test_parse_cell_understands_magics_and_rejects_bad_syntax():
    assert parse_cell("!ls\n%time x = 1") is not None
    assert parse_cell("def (") is None


def test_wrong_types_are_refused_with_what_to_pass():
    import pytest

    with pytest.raises(TypeError, match="source must be a cell's source text"):
        parse_cell(None)
    with pytest.raises(TypeError, match="nb must be a notebook"):
        called_names({"cells": []})
    # A str of names was read letter by letter: "abc" "called into" module "a".
    with pytest.raises(TypeError, match="names must be a set of qualified names"):
        calls_into("abc", "a")
    with pytest.raises(TypeError, match="module must be a dotted module name"):
        calls_into({"a.b"}, None)
