"""What the graders need, derived from the solution markers of the masters.

    python -m vaelab.tooling.assign --metadata NB...   # make grader-metadata: write it into masters
    python -m vaelab.tooling.assign --out build NB...  # make assign

One source of truth: the ``### BEGIN SOLUTION`` regions and the ``# Exercise N.M:``
lines that ``vaelab.tooling.student`` reads. From them this module derives

- nbgrader cell metadata: the exercise cell is a solution cell, the check cell after it
  (the next code cell) a locked, graded test cell worth ``POINTS`` point. The masters carry
  it (``--metadata`` writes it; ``metadata_problems`` is the test that it still agrees with
  the markers), so nbgrader takes a master as it is;
- ``OUT/student/`` and ``OUT/instructor/`` as ``make student`` writes them;
- ``OUT/nbgrader/``: a course folder (``nbgrader_config.py``, ``source/<stem>/<name>``, one
  assignment per notebook) ready for ``nbgrader generate_assignment <stem>``;
- ``OUT/otter/<name>``: the master in otter-grader's format (assignment config, one
  question per exercise with a hidden test that calls the check), for ``otter assign``.

Whatever goes to students is cleared of outputs, execution metadata and widget state
(a saved slider holds the value the student is asked to compute). Graders should run
with ``VAELAB_GRADING=1`` so that the checks' feedback never shows an expected value.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from vaelab.files import OutputPathError, check_destinations, write_text_atomic
from vaelab.tooling.nbio import NotebookInputError, notebook_text, read_notebook
from vaelab.tooling.student import (
    BEGIN,
    END,
    Exercise,
    find_exercises,
    make_student,
    marker_problems,
    without_run_state,
)

POINTS = 1  # per check cell
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
# Notebooks 04 and 05 train for about 30 s in single cells on a 2-core CPU.
CELL_TIMEOUT_S = 300

NBGRADER_CONFIG = f'''"""nbgrader course folder, written by `make assign` from the masters."""

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.root = "."
# Notebooks 04 and 05 train in single cells (about 30 s on a 2-core CPU).
c.Execute.timeout = {CELL_TIMEOUT_S}
# Graders run the checks without practice mode: start nbgrader with VAELAB_GRADING=1.
'''


# Values the exercises ask for, as they would be written: no file a student receives may
# hold them (nor any line of a solution, see ``answer_strings``).
ANSWER_VALUES = {
    "1.2": ("700.55", "700.554"),
    "2.3": ("2.6667", "2.667", "8/3", "8 / 3", "frac{8}{3}"),
    "2.4": ("5.1232",),
}
_MIN_LINE = 12  # shorter solution lines ("return z") say nothing on their own


def answer_strings(nb: NotebookNode, name: str = "notebook") -> dict[str, list[str]]:
    """For each exercise of a master, the strings that would give its answer away: the
    values of ``ANSWER_VALUES`` and every solution line (stripped) of at least 12 characters."""
    found: dict[str, list[str]] = {}
    for exercise in find_exercises(nb, name):
        lines = nb.cells[exercise.cell_index].source.split("\n")
        solution = [line.strip() for region in exercise.regions
                    for line in lines[region.begin + 1:region.end]]
        found[exercise.id] = list(ANSWER_VALUES.get(exercise.id, ())) + [
            line for line in solution if len(line) >= _MIN_LINE and not line.startswith("#")]
    return found


def leaks(text: str, answers: dict[str, list[str]]) -> list[str]:
    """The answers of ``answers`` (from ``answer_strings``) that occur in ``text``."""
    return [f"Exercise {eid}: {answer!r}" for eid, strings in answers.items()
            for answer in strings if answer in text]


def grade_id(exercise: Exercise, kind: str) -> str:
    """nbgrader's cell id for ``kind`` ("exercise" or "check") of an exercise: ``check_1_2``."""
    return f"{kind}_{exercise.id.replace('.', '_')}"


def check_cell_index(nb: NotebookNode, exercise: Exercise) -> int | None:
    """The index of the check cell of ``exercise``: the next code cell, or None."""
    for index in range(exercise.cell_index + 1, len(nb.cells)):
        if nb.cells[index].cell_type == "code":
            return index
    return None


def expected_metadata(nb: NotebookNode, name: str = "notebook") -> dict[int, dict]:
    """The nbgrader metadata each cell must carry, by cell index; other cells carry none.

    Raises ``MarkerError`` for bad markers and ``ValueError`` for an exercise without a
    check cell after it.
    """
    wanted: dict[int, dict] = {}
    for exercise in find_exercises(nb, name):
        check = check_cell_index(nb, exercise)
        if check is None:
            raise ValueError(f"{name}, cell {exercise.cell_index} (Exercise {exercise.id}): "
                             "no check cell after the exercise; add one calling its check")
        wanted[exercise.cell_index] = {
            "grade": False, "grade_id": grade_id(exercise, "exercise"), "locked": False,
            "schema_version": SCHEMA_VERSION, "solution": True, "task": False,
        }
        wanted[check] = {
            "grade": True, "grade_id": grade_id(exercise, "check"), "locked": True,
            "points": POINTS, "schema_version": SCHEMA_VERSION, "solution": False,
            "task": False,
        }
    return wanted


def with_grader_metadata(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """A copy of ``nb`` whose nbgrader cell metadata is exactly what the markers imply."""
    wanted = expected_metadata(nb, name)
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        if index in wanted:
            cell.metadata["nbgrader"] = wanted[index]
        else:
            cell.metadata.pop("nbgrader", None)
    return out


def metadata_problems(nb: NotebookNode, name: str = "notebook") -> list[str]:
    """Every cell whose nbgrader metadata disagrees with the markers, one message each."""
    wanted = expected_metadata(nb, name)
    problems = []
    for index, cell in enumerate(nb.cells):
        have = cell.metadata.get("nbgrader")
        if have != wanted.get(index):
            problems.append(f"{name}, cell {index}: nbgrader metadata {have} but the markers "
                            f"imply {wanted.get(index)}; run make grader-metadata")
    return problems


def for_students(nb: NotebookNode) -> NotebookNode:
    """A copy with nothing but sources and cell metadata: no outputs, counts, timings or
    widget state. The solutions stay (the graders' own tools remove them)."""
    return without_run_state(nb)


def for_otter(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The master in otter-grader's format: an assignment config cell, and each exercise cell
    wrapped in a question whose hidden test runs the exercise's check quietly.

    The check cell stays after the question for the student's feedback; otter's solution
    markers are ``# BEGIN SOLUTION`` / ``# END SOLUTION``.
    """
    src = for_students(nb)
    raw = nbformat.v4.new_raw_cell
    cells = [raw("# ASSIGNMENT CONFIG\n" + "\n".join([
        f"name: {Path(name).stem}",
        "init_cell: false", "check_all_cell: false", "export_cell: false",
        "run_tests: false", "solutions_pdf: false",
        "tests:", "  files: false", "  ok_format: true",
    ]))]
    exercises = {e.cell_index: e for e in find_exercises(nb, name)}
    for index, cell in enumerate(src.cells):
        cell.metadata.pop("nbgrader", None)
        exercise = exercises.get(index)
        if exercise is None:  # prose, code and the check cells stay as they are
            cells.append(cell)
            continue
        cell.source = "\n".join(
            line.replace(BEGIN, "# BEGIN SOLUTION").replace(END, "# END SOLUTION")
            for line in cell.source.split("\n"))
        # otter compares a test's output with the master's (none): the check runs silently.
        check = nb.cells[check_cell_index(nb, exercise)].source.strip().split("\n")
        test = nbformat.v4.new_code_cell(
            "# HIDDEN\nimport contextlib\nimport io\n\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            + "\n".join(f"    {line}" if line.strip() else "" for line in check))
        cells += [
            raw(f"# BEGIN QUESTION\nname: q{exercise.id.replace('.', '_')}\npoints: {POINTS}"),
            raw("# BEGIN SOLUTION"), cell, raw("# END SOLUTION"),
            raw("# BEGIN TESTS"), test, raw("# END TESTS"), raw("# END QUESTION"),
        ]
    out = copy.deepcopy(src)
    out.cells = cells
    return out


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.assign",
        description="Derive the graders' inputs from the solution markers of the masters.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--metadata", action="store_true",
                       help="write nbgrader cell metadata into the masters (nothing else changes)")
    group.add_argument("--out", type=Path, metavar="DIR",
                       help="write DIR/student, DIR/instructor, DIR/nbgrader and DIR/otter")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NB")
    return parser.parse_args(argv)


def destinations(out: Path, path: Path) -> list[Path]:
    """The files ``--out OUT`` writes for the master ``path`` (besides nbgrader_config.py);
    checked before anything is written (a test keeps this list and main's writes agreeing)."""
    return [out / "student" / path.name, out / "instructor" / path.name,
            out / "nbgrader" / "source" / path.stem / path.name, out / "otter" / path.name]


def _destination_problems(args: argparse.Namespace, masters: Sequence[Path]) -> list[str]:
    """Every file the command will write, checked before it writes any (one message)."""
    try:
        if args.metadata:  # the masters themselves, by design
            check_destinations(masters, hint="make the masters writable")
        else:
            files = [dest for path in masters for dest in destinations(args.out, path)]
            check_destinations([*files, args.out / "nbgrader" / "nbgrader_config.py"], masters,
                               "choose another --out folder")
    except OutputPathError as exc:
        return [str(exc)]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 written, 2 nothing written)."""
    args = _parse_args(argv)
    problems: list[str] = []
    masters: list[tuple[Path, NotebookNode]] = []
    for path in args.notebooks:
        try:
            nb = read_notebook(path)
        except NotebookInputError as exc:
            problems.append(str(exc))
            continue
        nb_problems = marker_problems(nb, str(path))
        if not nb_problems:
            try:
                expected_metadata(nb, str(path))
            except ValueError as exc:
                nb_problems = [str(exc)]
        problems += nb_problems
        masters.append((path, nb))
    if len({p.name for p, _ in masters}) != len(masters):
        problems.append("two notebooks share a file name; their versions would collide")
    if not problems:
        problems += _destination_problems(args, [path for path, _ in masters])
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("error: nothing written", file=sys.stderr)
        return 2

    if args.metadata:
        for path, nb in masters:
            text = notebook_text(with_grader_metadata(nb, str(path)))
            if text != path.read_text(encoding="utf-8"):
                write_text_atomic(path, text)
                print(f"{path}: nbgrader metadata written")
        return 0

    out: Path = args.out
    students = {}
    for path, nb in masters:
        text = notebook_text(make_student(with_grader_metadata(nb, str(path)), str(path)))
        problems += [f"{path}: the student version gives away {leak}"
                     for leak in leaks(text, answer_strings(nb, str(path)))]
        students[path] = text
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("error: nothing written", file=sys.stderr)
        return 2
    for path, nb in masters:
        graded = with_grader_metadata(nb, str(path))
        stem = path.stem
        write_text_atomic(out / "student" / path.name, students[path])
        write_text_atomic(out / "instructor" / path.name, path.read_text(encoding="utf-8"))
        write_text_atomic(out / "nbgrader" / "source" / stem / path.name,
                          notebook_text(for_students(graded)))
        write_text_atomic(out / "otter" / path.name, notebook_text(for_otter(graded, str(path))))
        print(f"{path.name}: {out / 'student'}, {out / 'nbgrader' / 'source' / stem}, "
              f"{out / 'otter'}")
    write_text_atomic(out / "nbgrader" / "nbgrader_config.py", NBGRADER_CONFIG)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
