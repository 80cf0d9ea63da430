"""What the graders need, derived from the solution markers of the masters.

    python -m vaelab.tooling.assign --metadata NB...   # make grader-metadata: write it into masters
    python -m vaelab.tooling.assign --out build [--project .] [--checkpoints] NB...  # make assign

One source of truth: the ``### BEGIN SOLUTION`` regions and the ``# Exercise N.M:``
lines that ``vaelab.tooling.student`` reads. From them this module derives

- nbgrader cell metadata: the exercise cell is a solution cell, the check cell after it
  (the next code cell) a locked, graded test cell worth ``POINTS`` point; so is each code
  cell right after it that ends with the same call (an exercise graded in steps, such as
  notebook 06's tiers: one cell and one point per step). The masters carry
  it (``--metadata`` writes it; ``metadata_problems`` is the test that it still agrees with
  the markers), so nbgrader takes a master as it is;
- ``OUT/student/`` and ``OUT/instructor/`` as ``make student`` writes them;
- the graded version of each master (``for_graders``): the check cells call
  ``vaelab.exercises.grading.grade`` (the check loaded afresh from the package, so nothing
  the notebook rebinds can change it, see ``graded_check_source``), reveal cells left out,
  outputs and widget state removed (a saved slider holds the value the student is asked to
  compute). The solutions stay: the graders' own tools remove them;
- ``OUT/nbgrader/``: a course folder (``nbgrader_config.py`` with the course id, an exchange
  folder, the per-cell timeout and the grading settings; ``source/<stem>/<name>``, one
  assignment per notebook; ``checkpoints/``, see ``vaelab.tooling.course``);
- ``OUT/otter/<stem>/``: the graded master in otter-grader's format (one question per
  exercise whose hidden test is the graded check), with what its autograder needs:
  ``requirements.txt`` (vaelab and its pins), the vaelab wheel, ``checkpoints/``, and the
  plugin that points graded runs at them. ``otter assign OUT/otter/<stem>/<name>
  OUT/otter/<stem>/dist`` makes one dist per notebook.

Nothing is written when a student's file would hold an answer: a value of the answer-values
file next to the masters (``answer-values.json``, read by this command and never installed)
or a line of a solution (``answer_strings``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from vaelab.files import OutputPathError, check_destinations, write_text_atomic
from vaelab.tooling import course
from vaelab.tooling.nbcode import calls_in_cell
from vaelab.tooling.nbio import NotebookInputError, notebook_text, read_notebook
from vaelab.tooling.student import (
    BEGIN,
    END,
    REVEAL,
    Exercise,
    MarkerError,
    blank_exercises,
    find_exercises,
    make_student,
    marker_problems,
    without_reveals,
    without_run_state,
)

POINTS = 1  # per check cell
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
CHECKS = "vaelab.exercises"
# Values the exercises ask for, as they would be written, per exercise id: a JSON file beside
# the masters (never in the installed package). No file a student receives may hold them.
ANSWER_VALUES_FILE = "answer-values.json"
_MIN_LINE = 12  # shorter solution lines ("return z") say nothing on their own
_BARE_CALL = re.compile(r"^[\w.]+\(\)$")  # opt.zero_grad(): an idiom, not an answer
# The whole answer as an expression: what a solution returns, or a value exercise assigns.
_ANSWER_EXPRESSION = re.compile(r"^(?:\s*return\s+|[\w.,][\w.,\s]*?\s*=(?!=)\s*)(?P<expr>.+)$")


def answer_values(folder: str | Path) -> dict[str, list[str]]:
    """The answer values of the masters in ``folder`` (exercise id -> strings), from its
    ``answer-values.json``; empty if there is none. ValueError if it is malformed."""
    path = Path(folder) / ANSWER_VALUES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from None
    if not (isinstance(data, dict) and all(
            isinstance(v, list) and all(isinstance(x, str) and x for x in v)
            for k, v in data.items() if not k.startswith("_"))):
        raise ValueError(f"{path}: expected an object mapping exercise ids to lists of strings")
    return {k: list(v) for k, v in data.items() if not k.startswith("_")}


def solution_strings(line: str) -> list[str]:
    """What of one solution line would give the answer away: the line (12 characters or more,
    not a comment, not a bare idiom such as ``opt.zero_grad()``) and, for a line that
    returns the answer or assigns it at the top level, that expression alone (so a hint
    quoting it is caught too; an intermediate step an exercise's text may give is not)."""
    text = line.strip()
    if len(text) < _MIN_LINE or text.startswith("#") or _BARE_CALL.match(text):
        return []
    found = [text]
    match = _ANSWER_EXPRESSION.match(line.rstrip())
    expr = match["expr"].strip() if match else ""
    if len(expr) >= _MIN_LINE and not _BARE_CALL.match(expr) and expr != text:
        found.append(expr)
    return found


def answer_strings(nb: NotebookNode, name: str = "notebook",
                   values: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """For each exercise of a master, the strings that would give its answer away: its
    ``values`` (see ``answer_values``) and the ``solution_strings`` of its solution lines."""
    found: dict[str, list[str]] = {}
    for exercise in find_exercises(nb, name):
        lines = nb.cells[exercise.cell_index].source.split("\n")
        solution = [text for region in exercise.regions
                    for line in lines[region.begin + 1:region.end]
                    for text in solution_strings(line)]
        found[exercise.id] = list((values or {}).get(exercise.id, ())) + solution
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


def check_cell_indices(nb: NotebookNode, exercise: Exercise) -> list[int]:
    """All check cells of ``exercise``: its check cell, and the code cells right after it
    whose last statement calls the same function (an exercise graded in steps, one cell and
    point each, such as notebook 06's tiers); empty if it has no check cell. (In a graded
    version every step calls ``grading.grade``, so its steps are found the same way.)"""
    first = check_cell_index(nb, exercise)
    if first is None:
        return []
    called = _last_call(nb.cells[first].source)
    found = [first]
    for cell in nb.cells[first + 1:]:
        if called is None or cell.cell_type != "code" or _last_call(cell.source) != called:
            break
        found.append(found[-1] + 1)
    return found


def _last_call(source: str) -> str | None:
    """The function a cell's last statement calls, if that statement is a call (``f(...)``)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    last = body[-1] if body else None
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
        return ast.unparse(last.value.func)
    return None


def check_grade_id(exercise: Exercise, step: int) -> str:
    """nbgrader's id of an exercise's check cell number ``step`` (0-based): ``check_6_1``,
    then ``check_6_1_2``, ``check_6_1_3`` for the cells after it."""
    return grade_id(exercise, "check") + (f"_{step + 1}" if step else "")


def expected_metadata(nb: NotebookNode, name: str = "notebook") -> dict[int, dict]:
    """The nbgrader metadata each cell must carry, by cell index; other cells carry none.

    Raises ``MarkerError`` for bad markers and ``ValueError`` for an exercise without a
    check cell after it.
    """
    wanted: dict[int, dict] = {}
    for exercise in find_exercises(nb, name):
        checks = check_cell_indices(nb, exercise)
        if not checks:
            raise ValueError(f"{name}, cell {exercise.cell_index} (Exercise {exercise.id}): "
                             "no check cell after the exercise; add one calling its check")
        wanted[exercise.cell_index] = {
            "grade": False, "grade_id": grade_id(exercise, "exercise"), "locked": False,
            "schema_version": SCHEMA_VERSION, "solution": True, "task": False,
        }
        for step, check in enumerate(checks):
            wanted[check] = {
                "grade": True, "grade_id": check_grade_id(exercise, step), "locked": True,
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


def graded_check_source(nb: NotebookNode, index: int, exercise: Exercise,
                        name: str = "notebook") -> str:
    """The graded form of check cell ``index``: the one call into ``vaelab.exercises`` it
    makes, run through ``vaelab.exercises.grading.grade`` (the check loaded afresh from the
    package) with the same arguments. ValueError if the cell makes no such call, or more."""
    calls = [(qualified, node, code) for qualified, node, code in calls_in_cell(nb, index)
             if qualified.startswith(CHECKS + ".")]
    if len(calls) != 1:
        raise ValueError(f"{name}, cell {index} (Exercise {exercise.id}): a check cell makes "
                         f"exactly one call of a check from {CHECKS}, found "
                         f"{[q for q, _, _ in calls] or 'none'}")
    qualified, node, code = calls[0]
    args = [ast.get_source_segment(code, a) for a in node.args]
    args += [f"{k.arg}={ast.get_source_segment(code, k.value)}" if k.arg
             else f"**{ast.get_source_segment(code, k.value)}" for k in node.keywords]
    return "\n".join([
        f"# Graded check of Exercise {exercise.id}: the check is loaded afresh from the vaelab",
        "# package, so no name defined or changed in this notebook can replace it.",
        "import importlib, vaelab.exercises.grading",
        "",
        "importlib.reload(vaelab.exercises.grading).grade(",
        f"    {', '.join([repr(qualified), *args])})",
    ])


def _check_cells(nb: NotebookNode, name: str) -> dict[int, Exercise]:
    """Every check cell (see ``check_cell_indices``) -> its exercise, in notebook order."""
    checks = {}
    for exercise in find_exercises(nb, name):
        indices = check_cell_indices(nb, exercise)
        if not indices:
            raise ValueError(f"{name}, cell {exercise.cell_index} (Exercise {exercise.id}): "
                             "no check cell after the exercise; add one calling its check")
        for index in indices:
            if REVEAL in nb.cells[index].metadata.get("tags", []):
                raise ValueError(f"{name}, cell {index} (Exercise {exercise.id}): the check "
                                 f"cell is tagged {REVEAL!r}; graded versions would lose it")
            checks[index] = exercise
    return checks


def for_graders(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The graded version of a master: grader metadata, graded check cells
    (``graded_check_source``), reveal cells left out, no outputs, counts, timings or widget
    state. The solutions stay (the graders' own tools remove them)."""
    out = with_grader_metadata(nb, name)
    for index, exercise in _check_cells(nb, name).items():
        out.cells[index].source = graded_check_source(nb, index, exercise, name)
    return without_run_state(without_reveals(out, name))


def otter_config(name: str, plugin: bool = True, files: Sequence[str] = ()) -> str:
    """The assignment config cell of an otter master: what the autograder ships (``files``,
    relative to the master's folder, only in the autograder) and installs (requirements.txt
    beside the master), and the plugin that sets up graded runs."""
    lines = [
        f"name: {Path(name).stem}",
        "init_cell: false", "check_all_cell: false", "export_cell: false",
        "run_tests: false", "solutions_pdf: false",
        "tests:", "  files: false", "  ok_format: true",
        "requirements: requirements.txt",
        # The grading image's Python: the one these pins were tested with.
        f"python_version: '{sys.version_info.major}.{sys.version_info.minor}'",
    ]
    if files:
        lines += ["autograder_files:", *[f"  - {f}" for f in files]]
    if plugin:
        lines += ["plugins:", f"  - {course.OTTER_PLUGIN}"]
    return "# ASSIGNMENT CONFIG\n" + "\n".join(lines)


def for_otter(nb: NotebookNode, name: str = "notebook", files: Sequence[str] = ()) -> NotebookNode:
    """The graded master in otter-grader's format: an assignment config cell (see
    ``otter_config``), and each exercise cell wrapped in a question whose hidden test runs
    the graded check quietly.

    The master's own check cell stays after the question for the student's feedback; otter's
    solution markers are ``# BEGIN SOLUTION`` / ``# END SOLUTION``.
    """
    checks = _check_cells(nb, name)
    graded: dict[str, list[str]] = {}
    for index, exercise in checks.items():
        graded.setdefault(exercise.id, []).append(graded_check_source(nb, index, exercise, name))
    src = without_run_state(without_reveals(nb, name))
    raw = nbformat.v4.new_raw_cell
    cells = [raw(otter_config(name, files=files))]
    for cell in src.cells:
        cell.metadata.pop("nbgrader", None)
        match = _EXERCISE_LINE.search(cell.source) if cell.cell_type == "code" else None
        if match is None or BEGIN not in cell.source:  # prose, code and the check cells stay
            cells.append(cell)
            continue
        exercise_id = match["id"]
        cell.source = "\n".join(
            line.replace(BEGIN, "# BEGIN SOLUTION").replace(END, "# END SOLUTION")
            for line in cell.source.split("\n"))
        # otter compares a test's output with the master's (none): the check runs silently.
        # One hidden test per check cell (an exercise graded in steps has several); otter
        # shares the question's points among them.
        tests = [nbformat.v4.new_code_cell(
            "# HIDDEN\nimport contextlib\nimport io\n\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            + "\n".join(f"    {line}" if line.strip() else "" for line in source.split("\n")))
            for source in graded[exercise_id]]
        cells += [
            raw(f"# BEGIN QUESTION\nname: q{exercise_id.replace('.', '_')}\n"
                f"points: {POINTS * len(graded[exercise_id])}"),
            raw("# BEGIN SOLUTION"), cell, raw("# END SOLUTION"),
            raw("# BEGIN TESTS"), *tests, raw("# END TESTS"), raw("# END QUESTION"),
        ]
    out = copy.deepcopy(src)
    out.cells = cells
    return out


_EXERCISE_LINE = re.compile(r"^\s*#\s*Exercise\s+(?P<id>\d+\.\d+)\s*:", re.MULTILINE)


def student_leaks(nb: NotebookNode, name: str, values: dict[str, list[str]]) -> list[str]:
    """What each file a student receives from ``nb`` would give away: the student version,
    and the graded versions with their solutions removed (as nbgrader and otter do)."""
    answers = answer_strings(nb, name, values)
    found = []
    released = [("the student version", make_student(nb, name)),
                ("the graded version", blank_exercises(for_graders(nb, name), None, name)),
                ("the otter version",
                 without_run_state(blank_exercises(without_reveals(nb, name), None, name)))]
    for what, version in released:
        found += [f"{name}: {what} gives away {leak}" for leak in leaks(notebook_text(version),
                                                                         answers)]
    return found


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.assign",
        description="Derive the graders' inputs from the solution markers of the masters.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--metadata", action="store_true",
                       help="write nbgrader cell metadata into the masters (nothing else changes)")
    group.add_argument("--out", type=Path, metavar="DIR",
                       help="write DIR/student, DIR/instructor, DIR/nbgrader and DIR/otter")
    parser.add_argument("--project", type=Path, metavar="ROOT",
                        help="the vaelab repository: its wheel goes into each otter autograder "
                        "(without it, the autograder installs vaelab by version from an index)")
    parser.add_argument("--checkpoints", action="store_true",
                        help="train (or reuse from DIR) the models the masters train through "
                        "train_or_load, for graded runs to reuse")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NB")
    return parser.parse_args(argv)


def _stop(problems: Sequence[str]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print("error: nothing written", file=sys.stderr)
    return 2


def _replace_folder(new: Path, dest: Path) -> None:
    """Move the finished folder ``new`` to ``dest``, replacing what was there."""
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def destinations(out: Path, path: Path) -> list[Path]:
    """The files ``--out OUT`` writes for the master ``path`` (besides nbgrader_config.py, and
    the wheel and models that --project and --checkpoints add to its otter folder); checked
    before anything is written (a test keeps this list and main's writes agreeing)."""
    return [out / "student" / path.name, out / "instructor" / path.name,
            out / "nbgrader" / "source" / path.stem / path.name,
            out / "otter" / path.stem / path.name, out / "otter" / path.stem / "requirements.txt"]


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
                if args.out is not None:
                    for index, exercise in _check_cells(nb, str(path)).items():
                        graded_check_source(nb, index, exercise, str(path))
            except (ValueError, MarkerError) as exc:
                nb_problems = [str(exc)]
        problems += nb_problems
        masters.append((path, nb))
    if len({p.name for p, _ in masters}) != len(masters):
        problems.append("two notebooks share a file name; their versions would collide")
    if not problems:
        problems += _destination_problems(args, [path for path, _ in masters])
    if problems:
        return _stop(problems)

    if args.metadata:
        for path, nb in masters:
            text = notebook_text(with_grader_metadata(nb, str(path)))
            if text != path.read_text(encoding="utf-8"):
                write_text_atomic(path, text)
                print(f"{path}: nbgrader metadata written")
        return 0

    out: Path = args.out
    try:
        values = {folder: answer_values(folder) for folder in {p.parent for p, _ in masters}}
    except ValueError as exc:
        return _stop([str(exc)])
    for path, nb in masters:
        problems += student_leaks(nb, str(path), values[path.parent])
    if problems:
        return _stop(problems)

    staging = Path(tempfile.mkdtemp(prefix=".assign-", dir=_existing_parent(out)))
    try:
        wheel = None
        if args.project is not None:
            wheel = course.build_wheel(args.project, staging / "wheel")
        trained: dict[Path, Path] = {}
        if args.checkpoints:
            for path, nb in masters:
                if course.training_cells(nb):
                    folder = staging / "checkpoints" / path.stem
                    previous = out / "otter" / path.stem / course.CHECKPOINTS
                    if previous.is_dir():
                        shutil.copytree(previous, folder)
                    print(f"{path.name}: training its models for the graders (or reusing "
                          f"{previous})", flush=True)
                    course.train_checkpoints(path, nb, folder)
                    trained[path] = folder
    except RuntimeError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return _stop([str(exc)])

    try:
        _write(out, masters, wheel, trained)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return 0


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(out: Path, masters: Sequence[tuple[Path, NotebookNode]], wheel: Path | None,
           trained: dict[Path, Path]) -> None:
    requirements = course.autograder_requirements(wheel)
    course_folder = out / "nbgrader"
    for path, nb in masters:
        stem, name = path.stem, str(path)
        files = ([wheel.name] if wheel else []) + ([course.CHECKPOINTS] if path in trained else [])
        otter = out / "otter" / stem
        write_text_atomic(out / "student" / path.name, notebook_text(make_student(nb, name)))
        write_text_atomic(out / "instructor" / path.name, path.read_text(encoding="utf-8"))
        write_text_atomic(course_folder / "source" / stem / path.name,
                          notebook_text(for_graders(nb, name)))
        write_text_atomic(otter / path.name, notebook_text(for_otter(nb, name, files)))
        write_text_atomic(otter / "requirements.txt", requirements)
        if wheel is not None:
            shutil.copy2(wheel, otter / wheel.name)
        if path in trained:
            staged = otter / f".{course.CHECKPOINTS}.new"
            shutil.rmtree(staged, ignore_errors=True)
            shutil.copytree(trained[path], staged)
            _replace_folder(staged, otter / course.CHECKPOINTS)
            shared = course_folder / course.CHECKPOINTS
            shared.mkdir(parents=True, exist_ok=True)
            for file in trained[path].iterdir():
                shutil.copy2(file, shared / file.name)
        print(f"{path.name}: {out / 'student'}, {course_folder / 'source' / stem}, {otter}")
    write_text_atomic(course_folder / "nbgrader_config.py", course.nbgrader_config())
    exchange = course_folder / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o777)  # students on a shared machine write their submissions here


if __name__ == "__main__":
    raise SystemExit(main())
