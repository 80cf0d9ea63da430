"""Reading notebooks with a clear error, and writing them the way Jupyter does.

Shared by the executor, the student-version generator and the assignment builder. Where
their output goes is checked, and written atomically, by ``vaelab.files``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nbformat
from nbformat import NotebookNode


class NotebookInputError(ValueError):
    """A command-line argument that is not a readable notebook."""


def read_notebook(path: str | os.PathLike[str]) -> NotebookNode:
    """Read ``path`` as an nbformat-4 notebook, or raise ``NotebookInputError`` saying why."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be the path (str or Path) of an .ipynb file, got {path!r}")
    p = Path(path)
    if not p.exists():
        raise NotebookInputError(f"{p}: no such file; pass the path of an .ipynb notebook")
    if not p.is_file():
        raise NotebookInputError(f"{p}: not a file; pass the path of an .ipynb notebook")
    if p.suffix != ".ipynb":
        raise NotebookInputError(f"{p}: not a notebook (expected a name ending in .ipynb)")
    invalid: dict = {}
    try:
        text = p.read_text(encoding="utf-8")
        with warnings.catch_warnings():
            # Old notebooks without cell ids get ids on read; that is not the user's problem.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error=invalid)
    except Exception as exc:  # JSON errors, unknown nbformat versions, bad encodings
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookInputError(f"{p}: not a readable notebook ({first})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookInputError(f"{p}: not a notebook (no list of cells)")
    if "ValidationError" in invalid:  # valid JSON, but not what Jupyter writes
        error = invalid["ValidationError"]
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                        for part in error.absolute_path).lstrip(".")
        raise NotebookInputError(f"{p}: a malformed notebook ({where or 'top level'}: "
                                 f"{error.message}); open and save it in Jupyter, or fix it")
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """Serialize like Jupyter does when it saves (indent 1, trailing newline): diff-friendly."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        # nbformat.writes would serialize any dict, giving a file Jupyter cannot open.
        raise TypeError(f"nb must be a notebook (as read_notebook returns, with a list of "
                        f"cells), got {type(nb).__name__}")
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"
