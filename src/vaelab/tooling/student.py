"""Student and instructor versions of the master notebooks.

    python -m vaelab.tooling.student --out build NB...      # make student
    python -m vaelab.tooling.student --workspace DIR NB...  # make lab
    python -m vaelab.tooling.student --ship DIR NB...       # make student-notebooks

writes ``build/student/<name>.ipynb`` and ``build/instructor/<name>.ipynb``; with
``--workspace`` only the student versions, straight into DIR, skipping any notebook
already there (it holds a student's work); with ``--ship`` only the student versions,
into the folder the package ships them from (``src/vaelab/student_notebooks``), replacing
the old copies and removing any notebook there that has no master.

Masters mark each solution (nbgrader's convention) inside the exercise's code
cell, under a comment line naming the exercise::

    # Exercise 1.2: the MLE
    def gaussian_mle(x):
        ### BEGIN SOLUTION
        mu = x.mean()
        ...
        ### END SOLUTION

The student version replaces each region, markers included, by one line at the
``### BEGIN SOLUTION`` marker's indentation::

        raise NotImplementedError("Exercise 1.2: the MLE - write your code here")

and clears every output and execution count (cell tags such as
``nbval-ignore-output`` and ``raises-exception`` are kept). Cells tagged
``reveal`` (the package's own source of an exercise's answer, shown after the
exercise in the master) are left out: nothing in a student version shows an
answer, whatever the student wrote. ``make_student`` is the one generator of
student versions (``make student``, ``make lab``, ``make assign``, packaging).
The instructor version is the master, byte for byte, outputs included.

Every master is validated before anything is written; any problem stops the
command with exit status 2, a message naming the notebook, the cell index and
the exercise, and no file written. Problems: unbalanced or nested markers, a
marker line in a markdown or raw cell, a misspelt marker (``## BEGIN
SOLUTIONS``: it would leave the solution in the student version), a solution
region in a cell without an ``# Exercise N.M: <title>`` line outside the region,
an exercise line in a code cell without a region (the solution would reach
students), two exercise lines in one cell, and one exercise id used twice.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from vaelab.files import OutputPathError, check_destinations, write_text_atomic
from vaelab.student_notebooks import write_new_notebooks
from vaelab.tooling.nbio import NotebookInputError, notebook_text, read_notebook

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
REVEAL = "reveal"  # the tag of cells that show an exercise's answer (left out for students)
# Anything that looks like a marker: exact markers pass, near misses are errors.
_MARKER_LIKE = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTIONS?\b", re.IGNORECASE | re.MULTILINE)
_EXERCISE = re.compile(r"^\s*#\s*Exercise\s+(?P<id>\d+\.\d+)\s*:\s*(?P<title>.*?)\s*$",
                       re.MULTILINE)


class MarkerError(ValueError):
    """Solution markers that cannot be turned into a student version; one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Region:
    """One solution region: lines ``begin``..``end`` (0-based, markers included) of a cell."""

    begin: int
    end: int
    indent: str


@dataclass(frozen=True)
class Exercise:
    """An exercise cell of a master notebook."""

    id: str  # "N.M"
    title: str
    cell_index: int
    regions: tuple[Region, ...]

    @property
    def stub(self) -> str:
        """The message of the ``NotImplementedError`` that replaces the solution."""
        return f"Exercise {self.id}: {self.title} - write your code here"


def stub_line(exercise: Exercise, indent: str) -> str:
    """The ``raise NotImplementedError("...")`` line that replaces a region, at ``indent``."""
    text = exercise.stub.replace("\\", "\\\\").replace('"', '\\"')
    return f'{indent}raise NotImplementedError("{text}")'


def _source(cell: NotebookNode) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _cell_problems(
    cell: NotebookNode, index: int, where: str
) -> tuple[list[str], Exercise | None]:
    """Problems of one cell, and its exercise if it is a valid exercise cell."""
    lines = _source(cell).split("\n")
    problems: list[str] = []

    def problem(text: str, exercise_id: str | None = None) -> None:
        label = f"cell {index}" + (f" (Exercise {exercise_id})" if exercise_id else "")
        problems.append(f"{where}, {label}: {text}")

    exercise_lines = [
        (n, m) for n, line in enumerate(lines) if (m := _EXERCISE.match(line)) is not None
    ]
    first_id = exercise_lines[0][1]["id"] if exercise_lines else None
    marker_lines = [n for n, line in enumerate(lines) if _MARKER_LIKE.match(line)]

    if cell.cell_type != "code":
        for n in marker_lines:
            problem(
                f"solution marker {lines[n].strip()!r} (line {n + 1}) in a {cell.cell_type} "
                "cell; markers belong in code cells only",
                first_id,
            )
        return problems, None

    regions: list[Region] = []
    open_at: int | None = None
    for n in marker_lines:
        text = lines[n].strip()
        if text not in (BEGIN, END):
            problem(
                f"malformed marker {text!r} (line {n + 1}); write exactly {BEGIN!r} or {END!r}",
                first_id,
            )
        elif text == BEGIN:
            if open_at is not None:
                problem(
                    f"nested {BEGIN!r} (line {n + 1}) inside the region opened on line "
                    f"{open_at + 1}; close it with {END!r} first",
                    first_id,
                )
            else:
                open_at = n
        elif open_at is None:
            problem(f"{END!r} (line {n + 1}) without a {BEGIN!r} before it", first_id)
        else:
            indent = lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]
            regions.append(Region(open_at, n, indent))
            open_at = None
    if open_at is not None:
        problem(f"{BEGIN!r} (line {open_at + 1}) is never closed with {END!r}", first_id)

    def inside(n: int) -> bool:
        return any(r.begin <= n <= r.end for r in regions)

    outside = [(n, m) for n, m in exercise_lines if not inside(n)]
    if regions and not outside:
        if exercise_lines:
            problem("the '# Exercise N.M: <title>' line sits inside the solution region; "
                    f"move it above {BEGIN!r} so the student version keeps it", first_id)
        else:
            problem("solution region without an '# Exercise N.M: <title>' comment line; "
                    "start the cell with one")
    if len(exercise_lines) > 1:
        ids = ", ".join(m["id"] for _, m in exercise_lines)
        problem(f"several exercise lines in one cell ({ids}); one exercise per cell", first_id)
    if exercise_lines and not regions and not marker_lines:
        problem(f"exercise line but no {BEGIN!r} .. {END!r} region: the solution would reach "
                "students; mark it", first_id)
    for _, m in outside:
        if not m["title"]:
            problem("exercise line without a title ('# Exercise N.M: <title>')", m["id"])
    if problems or not regions:
        return problems, None
    _, match = outside[0]
    return problems, Exercise(match["id"], match["title"], index, tuple(regions))


def _reveal_problems(nb: NotebookNode, name: str) -> list[str]:
    return [f"{name}, cell {index}: tagged {REVEAL!r} but holds an exercise or a solution "
            "marker; tag only the cells that show the answer after the exercise"
            for index, cell in enumerate(nb.cells)
            if REVEAL in cell.get("metadata", {}).get("tags", [])
            and (_MARKER_LIKE.search(_source(cell)) or _EXERCISE.search(_source(cell)))]


def marker_problems(nb: NotebookNode, name: str = "notebook") -> list[str]:
    """Every marker problem of ``nb``, one message each, naming ``name``, the cell and exercise."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        cell_problems, exercise = _cell_problems(cell, index, name)
        problems += cell_problems
        if exercise is None:
            continue
        if exercise.id in seen:
            problems.append(
                f"{name}, cell {index} (Exercise {exercise.id}): duplicate exercise id, "
                f"already used in cell {seen[exercise.id]}"
            )
        else:
            seen[exercise.id] = index
    return problems + _reveal_problems(nb, name)


def find_exercises(nb: NotebookNode, name: str = "notebook") -> list[Exercise]:
    """The exercises of a master notebook in cell order; ``MarkerError`` if its markers are bad."""
    problems = marker_problems(nb, name)
    if problems:
        raise MarkerError(problems)
    exercises = []
    for index, cell in enumerate(nb.cells):
        _, exercise = _cell_problems(cell, index, name)
        if exercise is not None:
            exercises.append(exercise)
    return exercises


def blank_exercises(
    nb: NotebookNode, only: Iterable[str] | None = None, name: str = "notebook"
) -> NotebookNode:
    """A copy of ``nb`` with the solution regions of the exercises ``only`` (ids; all if None)
    replaced by ``raise NotImplementedError(...)``. Outputs are left as they are."""
    exercises = find_exercises(nb, name)
    wanted = None if only is None else set(only)
    if wanted is not None:
        unknown = wanted - {e.id for e in exercises}
        if unknown:
            raise ValueError(f"{name}: no exercise {sorted(unknown)}; it has "
                             f"{[e.id for e in exercises]}")
    out = copy.deepcopy(nb)
    for exercise in exercises:
        if wanted is not None and exercise.id not in wanted:
            continue
        cell = out.cells[exercise.cell_index]
        lines = _source(cell).split("\n")
        # Replace from the last region backwards so earlier line numbers stay valid.
        for region in sorted(exercise.regions, key=lambda r: r.begin, reverse=True):
            lines[region.begin : region.end + 1] = [stub_line(exercise, region.indent)]
        cell.source = "\n".join(lines)
    return out


def make_student(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The student version of a master: every solution blanked, reveal cells left out,
    outputs and counts cleared.

    Cell ids, tags and other cell metadata are kept (nbval and nbgrader read them);
    execution timing and the notebook's widget state (outputs of a run) are dropped.
    """
    return without_run_state(without_reveals(blank_exercises(nb, None, name), name))



def without_reveals(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """A copy of ``nb`` without its cells tagged ``reveal``; ``MarkerError`` if one of them
    holds a solution marker or an exercise line (the exercise itself would vanish)."""
    problems = _reveal_problems(nb, name)
    if problems:
        raise MarkerError(problems)
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if REVEAL not in c.get("metadata", {}).get("tags", [])]
    return out


def without_run_state(nb: NotebookNode) -> NotebookNode:
    """A copy with no outputs, execution counts, timings or widget state (what a run left)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    out.metadata.pop("widgets", None)
    return out


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.student",
        description="Write OUT/student/ (solutions blanked, outputs cleared) and "
        "OUT/instructor/ (the masters as they are).",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, metavar="DIR")
    group.add_argument("--workspace", type=Path, metavar="DIR",
                       help="write the student versions straight into DIR, skipping every "
                       "notebook already there (a student's work is never overwritten)")
    group.add_argument("--ship", type=Path, metavar="DIR",
                       help="write the student versions into DIR, replacing the old ones, and "
                       "remove every other notebook there (the copies the package ships)")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NB")
    return parser.parse_args(argv)


def _destination_problems(args: argparse.Namespace, masters: Sequence[Path]) -> list[str]:
    """Every file the command will write, checked before it writes any (one message)."""
    try:
        if args.workspace is not None:  # notebooks already there are kept, not written
            check_destinations([args.workspace / p.name for p in masters
                                if not (args.workspace / p.name).exists()], masters,
                               "choose another --workspace folder")
        elif args.ship is not None:
            check_destinations([args.ship / p.name for p in masters], masters,
                               "pass the package's src/vaelab/student_notebooks folder")
        else:
            check_destinations([args.out / kind / p.name for p in masters
                                for kind in ("student", "instructor")], masters,
                               "choose another --out folder")
    except OutputPathError as exc:
        return [str(exc)]
    return []


def _ship(folder: Path, plans: Sequence[tuple[Path, str]]) -> int:
    names = {path.name for path, _ in plans}
    for path, student_text in plans:
        write_text_atomic(folder / path.name, student_text)
        print(f"{folder / path.name}: written")
    for stale in sorted(folder.glob("*.ipynb")):
        if stale.name not in names:
            stale.unlink()
            print(f"{stale}: removed (no master of that name)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 written, 2 nothing written)."""
    args = _parse_args(argv)
    problems: list[str] = []
    plans = []  # (master path, student text, instructor text, exercise count)
    names = [p.name for p in args.notebooks]
    if len(set(names)) != len(names):
        problems.append("two notebooks share a file name; their versions would collide")
    for path in args.notebooks:
        try:
            nb = read_notebook(path)
            master_text = path.read_text(encoding="utf-8")
        except NotebookInputError as exc:
            problems.append(str(exc))
            continue
        nb_problems = marker_problems(nb, str(path))
        if nb_problems:
            problems += nb_problems
            continue
        student = make_student(nb, str(path))
        plans.append((path, notebook_text(student), master_text, len(find_exercises(nb))))
    if not problems:
        problems += _destination_problems(args, [path for path, *_ in plans])
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("error: nothing written", file=sys.stderr)
        return 2

    try:
        if args.workspace is not None:
            write_new_notebooks(args.workspace, {p.name: text for p, text, *_ in plans})
            return 0
        if args.ship is not None:
            return _ship(args.ship, [(p, text) for p, text, *_ in plans])
    except OutputPathError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 2
    width = max(len(path.name) for path, *_ in plans)
    for path, student_text, master_text, count in plans:
        write_text_atomic(args.out / "student" / path.name, student_text)
        write_text_atomic(args.out / "instructor" / path.name, master_text)
        noun = "exercise" if count == 1 else "exercises"
        print(f"{path.name:<{width}}  {count:2d} {noun:<9}  -> "
              f"{args.out / 'student' / path.name}, {args.out / 'instructor' / path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
