"""The setup cell: every notebook's first code cell, written from one template.

    python -m vaelab.tooling.setup_cell NB...            # make setup-cells

sets the first code cell of each notebook to ``setup_cell(source)``, where ``source`` is the
pip requirement in ``pyproject.toml`` under ``[tool.vaelab] install``: the one place a
course sets where a kernel without vaelab (Colab, a JupyterHub) installs it from, its
repository's address or a wheel. Where vaelab is installed the cell prints nothing, so the
cell's stored output (empty), execution count, id and metadata are kept as they are. A first
code cell that does not seed (an older notebook) gets the setup cell inserted before it.

Exit status: 0 written (or already up to date), 2 nothing written (a bad argument).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from vaelab.files import write_text_atomic
from vaelab.tooling.nbio import NotebookInputError, notebook_text, read_notebook

TEMPLATE = """\
# Setup, run first. Where vaelab is missing (Colab, a JupyterHub) this installs it from the
# course's copy; elsewhere it prints nothing. MNIST (about 11 MB) is downloaded on first use;
# on a machine without internet point vaelab at a folder holding the four MNIST .gz files:
# import os; os.environ["VAELAB_DATA_DIR"] = "/path/to/mnist"
import importlib.util
import site
import subprocess
import sys

if importlib.util.find_spec("vaelab") is None:
    source = SOURCE  # set by the course
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)
    site.addsitedir(site.getusersitepackages())  # where pip puts it if it cannot write elsewhere

from vaelab.seeding import seed_everything

rng = seed_everything(0)"""


class SetupCellError(ValueError):
    """A configuration the setup cell cannot be written from; the message says what to fix."""


def setup_cell(source: str) -> str:
    """The setup cell's code, installing vaelab from the pip requirement ``source``."""
    if not isinstance(source, str) or not source.strip() or "\n" in source:
        raise SetupCellError(f"the install source must be one pip requirement on one line "
                             f"(a git address or a wheel), got {source!r}")
    return TEMPLATE.replace("SOURCE", json.dumps(source.strip()))


def course_source(pyproject: str | Path = "pyproject.toml") -> str:
    """The install source set in ``pyproject``'s ``[tool.vaelab] install``."""
    path = Path(pyproject)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SetupCellError(f"{path}: cannot read it ({exc}); run from the repository root "
                             "or pass --pyproject") from None
    source = config.get("tool", {}).get("vaelab", {}).get("install")
    if source is None:
        raise SetupCellError(f"{path}: no [tool.vaelab] install = \"<pip requirement>\"; add "
                             "the course's address (or a wheel) there")
    setup_cell(source)  # checks it
    return source


def with_setup_cell(nb: NotebookNode, source: str) -> NotebookNode:
    """``nb`` with its first code cell set to the setup cell (in place; returned)."""
    text = setup_cell(source)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if code and "seed_everything(" in code[0].source:
        code[0].source = text
    else:
        at = nb.cells.index(code[0]) if code else len(nb.cells)
        nb.cells.insert(at, nbformat.v4.new_code_cell(text))
    return nb


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.setup_cell",
        description="Set every notebook's first code cell to the setup cell, installing vaelab "
        "from pyproject.toml's [tool.vaelab] install.")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NB")
    args = parser.parse_args(argv)
    try:
        source = course_source(args.pyproject)
        books = [(path, read_notebook(path)) for path in args.notebooks]
    except (SetupCellError, NotebookInputError) as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 2
    for path, nb in books:
        text = notebook_text(with_setup_cell(nb, source))
        if text == path.read_text(encoding="utf-8"):
            print(f"{path}: up to date")
        else:
            write_text_atomic(path, text)
            print(f"{path}: setup cell written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
