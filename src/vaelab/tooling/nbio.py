"""Reading notebooks with a clear error, checking destinations, writing files atomically.

Shared by the executor and the student-version generator: a bad path stops the
command before anything is run or written, and a write never leaves half a file behind.
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


class OutputPathError(ValueError):
    """A destination the command could not write to (checked before any work)."""


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing parent; ``OutputPathError`` if one on the way is a file."""
    for probe in (path, *path.parents):
        try:
            exists = probe.exists()
        except OSError as exc:
            raise OutputPathError(f"{path}: cannot look into {probe.parent} "
                                  f"({exc.strerror}); choose another folder") from None
        if exists:
            if not probe.is_dir() and probe != path:
                raise OutputPathError(f"{path}: {probe} is a file, so no folder can be made "
                                      "under it; choose another output folder")
            return probe
    return Path(path.anchor or ".")


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it is (or can be made as) a folder this user can write files in.

    Raises ``OutputPathError`` saying why not: it is a file, it lies under a file, or the
    folder (or the existing parent it would be made in) is not writable.
    """
    folder = Path(path)
    base = _nearest_existing(folder)
    if base == folder and not folder.is_dir():
        raise OutputPathError(f"{folder} is a file, not a folder; choose a folder for the "
                              "output (it is made if missing)")
    if not os.access(base, os.W_OK | os.X_OK):
        what = "folder" if base == folder else f"folder {base}, where it would be made,"
        raise OutputPathError(f"{folder}: the {what} is not writable; fix its permissions or "
                              "choose another output folder")
    return folder


def check_writable_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it can be replaced atomically (its folder writable, itself not a
    read-only file), else raise ``OutputPathError``."""
    dest = Path(path)
    if dest.is_dir():
        raise OutputPathError(f"{dest} is a folder; it cannot be replaced by a file")
    if dest.exists() and not os.access(dest, os.W_OK):
        raise OutputPathError(f"{dest} is read-only; make it writable (chmod u+w) to update it")
    check_output_dir(dest.parent)
    return dest


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
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        # nbformat.writes would serialize any dict, giving a file Jupyter cannot open.
        raise TypeError(f"nb must be a notebook (as read_notebook returns, with a list of "
                        f"cells), got {type(nb).__name__}")
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Readers see either the old file or the whole new one, never a partial write.
    The permissions of an existing file are kept; a new file gets the umask default.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
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
