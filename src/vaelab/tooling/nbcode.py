"""What a notebook's code cells call, by fully qualified name.

Used by the notebook tests: "the check cell calls a function from
``vaelab.exercises``", "a widget cell calls ``vaelab.widgets``", "the first code
cell calls ``seed_everything``". Imports are followed through the notebook in
cell order, so after ``import matplotlib.pyplot as plt`` a later ``plt.show()``
is reported as ``matplotlib.pyplot.show``. Static analysis only: nothing runs.
"""

from __future__ import annotations

import ast

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

_TRANSFORMER = TransformerManager()


def parse_cell(source: str) -> ast.Module | None:
    """The AST of a code cell (IPython magics made Python first); None if it does not parse."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a cell's source text (str), got {type(source).__name__}")
    try:
        return ast.parse(_TRANSFORMER.transform_cell(source))
    except SyntaxError:
        return None


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _record_imports(tree: ast.Module, aliases: dict[str, str]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def calls_in_cell(nb: NotebookNode, index: int) -> list[tuple[str, ast.Call, str]]:
    """The calls of cell ``index``: (qualified name, call node, the code the node was parsed
    from), names resolved through the imports of the cells up to and including it."""
    aliases: dict[str, str] = {}
    found: list[tuple[str, ast.Call, str]] = []
    for position, cell in enumerate(nb.cells[: index + 1]):
        code = _TRANSFORMER.transform_cell(cell.source) if cell.cell_type == "code" else ""
        tree = parse_cell(cell.source) if cell.cell_type == "code" else None
        if tree is None:
            continue
        _record_imports(tree, aliases)
        if position != index:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (name := _dotted(node.func)):
                head, _, rest = name.partition(".")
                full = aliases.get(head, head)
                found.append((f"{full}.{rest}" if rest else full, node, code))
    return found


def called_names(nb: NotebookNode) -> list[set[str]]:
    """For each cell (by index), the qualified names of everything its code calls.

    Names come out resolved through the imports seen so far (``plt.show`` ->
    ``matplotlib.pyplot.show``); unresolved names stay as written (``print``).
    Markdown and raw cells, and code that does not parse, give an empty set.
    """
    if not isinstance(getattr(nb, "cells", None), list):
        raise TypeError(f"nb must be a notebook (nbformat.read or read_notebook gives one), got "
                        f"{type(nb).__name__}")
    aliases: dict[str, str] = {}
    result: list[set[str]] = []
    for cell in nb.cells:
        names: set[str] = set()
        tree = parse_cell(cell.source) if cell.cell_type == "code" else None
        if tree is not None:
            _record_imports(tree, aliases)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and (name := _dotted(node.func)):
                    head, _, rest = name.partition(".")
                    full = aliases.get(head, head)
                    names.add(f"{full}.{rest}" if rest else full)
        result.append(names)
    return result
