"""The student versions of the notebooks, shipped in the package, and the call that copies
them into a folder: how a student without a shell or a checkout gets them.

    python -m vaelab.student_notebooks [FOLDER]        # FOLDER: the current one by default

or, in a notebook (Colab, a JupyterHub), a cell::

    from vaelab.student_notebooks import write_student_notebooks
    write_student_notebooks()

A notebook already in the folder is never replaced: it holds the student's work (delete it
to start that notebook afresh). The copies here are the exercise versions that
``vaelab.tooling.student`` makes from the masters (solutions replaced by
``raise NotImplementedError``, outputs cleared); ``make student-notebooks`` rewrites them and a
test fails when they fall behind the masters. The package ships no master.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from vaelab.files import OutputPathError, check_output_dir, write_text_atomic


def shipped_notebooks() -> dict[str, str]:
    """The student notebooks this package ships: ``{file name: notebook text}``, in order."""
    folder = resources.files(__name__)
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".ipynb")
    }


def write_new_notebooks(folder: str | os.PathLike[str], notebooks: Mapping[str, str]
                        ) -> dict[Path, bool]:
    """Write each ``{file name: text}`` into ``folder`` unless a file of that name is there.

    Prints one line per notebook (written, or kept) and returns ``{path: written}``. The
    folder is checked before anything is written (``OutputPathError`` saying why not).
    """
    target = check_output_dir(folder, "choose a folder you can write to")
    result = {}
    for name, text in notebooks.items():
        dest = target / name
        if dest.exists():
            print(f"{dest}: kept (already there; delete it to start that notebook afresh)")
            result[dest] = False
        else:
            write_text_atomic(dest, text)
            print(f"{dest}: written")
            result[dest] = True
    return result


def write_student_notebooks(folder: str | os.PathLike[str] = ".") -> dict[Path, bool]:
    """Copy the shipped student notebooks into ``folder`` (default: the current folder),
    keeping any notebook already there. Returns ``{path: written}``."""
    return write_new_notebooks(folder, shipped_notebooks())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vaelab.student_notebooks [FOLDER]``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m vaelab.student_notebooks [FOLDER]\n"
              "Copies the student notebooks into FOLDER (default: the current folder); "
              "a notebook already there is kept.", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        write_student_notebooks(args[0] if args else ".")
    except OutputPathError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 2
    return 0
