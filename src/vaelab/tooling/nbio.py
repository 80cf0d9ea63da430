"""Reading notebooks with a clear error, writing files atomically.

Shared by the executor and the student-version generator: a bad path stops the
command before anything is written, and a write never leaves half a file behind.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import nbformat
from nbformat import NotebookNode


class NotebookInputError(ValueError):
    """A command-line argument that is not a readable notebook."""


def read_notebook(path: str | os.PathLike[str]) -> NotebookNode:
    """Read ``path`` as an nbformat-4 notebook, or raise ``NotebookInputError`` saying why."""
    p = Path(path)
    if not p.exists():
        raise NotebookInputError(f"{p}: no such file; pass the path of an .ipynb notebook")
    if not p.is_file():
        raise NotebookInputError(f"{p}: not a file; pass the path of an .ipynb notebook")
    if p.suffix != ".ipynb":
        raise NotebookInputError(f"{p}: not a notebook (expected a name ending in .ipynb)")
    try:
        text = p.read_text(encoding="utf-8")
        with warnings.catch_warnings():
            # Old notebooks without cell ids get ids on read; that is not the user's problem.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # JSON errors, unknown nbformat versions, bad encodings
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookInputError(f"{p}: not a readable notebook ({first})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookInputError(f"{p}: not a notebook (no list of cells)")
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """Serialize like Jupyter does when it saves (indent 1, trailing newline): diff-friendly."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Readers see either the old file or the whole new one, never a partial write.
    The permissions of an existing file are kept; a new file gets the umask default.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        mode = dest.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_notebook_atomic(path: str | os.PathLike[str], nb: NotebookNode) -> None:
    """Serialize ``nb`` (see ``notebook_text``) and write it atomically to ``path``."""
    write_text_atomic(path, notebook_text(nb))
