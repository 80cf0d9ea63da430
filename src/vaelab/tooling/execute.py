"""Execute notebooks headless, each in a fresh kernel of this interpreter.

    python -m vaelab.tooling.execute --out build NB...     # make run
    python -m vaelab.tooling.execute --in-place NB...      # make outputs

``--out DIR`` writes ``DIR/<name>.ipynb`` (executed) and ``DIR/<name>.html`` and
never modifies the source notebook. ``--in-place`` rewrites the source notebook
only when it executed without error. One line per notebook on stdout::

    ok    01_gaussian_mle.ipynb    6.3 s
    FAIL  02_poisson.ipynb         2.1 s  cell 7: NameError: name 'lam' is not defined

Exit status: 0 all ran, 1 at least one failed or could not be written (the others
still run), 2 bad arguments (a path that is not a notebook, an output folder or
notebook that cannot be written; nothing is executed or written), 130 interrupted.

Kernel: always ``sys.executable -m ipykernel_launcher``. The ``python3``
kernelspec installed in a venv says ``"python"`` in its argv, which
jupyter_client maps to ``sys.executable`` but a user-level kernelspec of the same
name (``~/.local/share/jupyter/kernels/python3``) could point at another Python;
building the spec here rules that out.

Stable, diff-friendly output (what ``--in-place`` stores and nbval compares):
cell ids are kept, execution counts run 1..n in cell order (fresh kernel, no
skipped cells), no per-cell execution timestamps (``record_timing`` off, stale
``metadata.execution`` removed), empty code cells carry no output or count, and
widget model ids, random UUIDs in every run, are renumbered deterministically
(uuid5 of the notebook name and their order), so an unchanged notebook
re-executes to the same file. Widget state is kept: it lets a saved notebook or
the HTML show the widgets' last view without a kernel and nbval ignores it. It is
dropped (with a note on stderr) only above ``MAX_WIDGET_STATE_BYTES``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
import zmq
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode
from traitlets import default

from vaelab.files import OutputPathError, check_destinations, write_text_atomic
from vaelab.tooling.nbio import NotebookInputError, notebook_text, read_notebook

DEFAULT_TIMEOUT = 600
KERNEL_NAME = "python3"
# The interpreter running this module is the one whose packages the notebooks must see.
KERNEL_ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
WIDGET_STATE_KEY = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_KEY = "application/vnd.jupyter.widget-view+json"
# Above this the state (mostly PNGs captured by Output widgets) bloats the repository.
MAX_WIDGET_STATE_BYTES = 2_000_000
_WIDGET_ID_NAMESPACE = uuid.UUID("8f3c1d2e-5a4b-4c6d-9e7f-0a1b2c3d4e5f")


class _ThisInterpreterSpecs(KernelSpecManager):
    """A kernelspec manager that knows one kernel: ipykernel in ``sys.executable``."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        # ipykernel's own spec for this interpreter (argv and its encryption metadata).
        spec = get_kernel_dict(extra_arguments=None)
        spec["argv"] = list(KERNEL_ARGV)
        return KernelSpec(resource_dir=RESOURCES, **spec)


class ThisInterpreterKernelManager(AsyncKernelManager):
    """Starts ``sys.executable -m ipykernel_launcher`` whatever kernelspecs are installed."""

    @default("kernel_spec_manager")
    def _default_kernel_spec_manager(self) -> KernelSpecManager:
        return _ThisInterpreterSpecs()

    @default("transport_encryption")
    def _default_transport_encryption(self) -> str:
        # Encrypted local sockets where pyzmq can (ipykernel warns on stderr otherwise).
        return "auto" if zmq.has("curve") else "disabled"


def make_client(
    nb: NotebookNode, cwd: str | Path, timeout: int = DEFAULT_TIMEOUT
) -> NotebookClient:
    """An nbclient ``NotebookClient`` for ``nb`` with this interpreter's kernel started in ``cwd``.

    ``timeout`` is per cell, in seconds. Timing metadata is not recorded (it would
    change the file on every run). Used by ``execute_notebook`` and by tests that
    drive a kernel cell by cell (``with client.setup_kernel(): client.execute_cell(...)``).
    """
    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=ThisInterpreterKernelManager,
        record_timing=False,
        store_widget_state=True,
        resources={"metadata": {"path": str(cwd)}},
    )


@dataclass
class Outcome:
    """What executing one notebook gave: the notebook (executed as far as it got) and the error."""

    nb: NotebookNode
    seconds: float
    error: str | None = None
    failed_cell: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def execute_notebook(
    nb: NotebookNode, cwd: str | Path, timeout: int = DEFAULT_TIMEOUT, name: str = "notebook"
) -> Outcome:
    """Execute a copy of ``nb`` in a fresh kernel started in ``cwd``; never raises for cell errors.

    Returns an ``Outcome`` whose ``nb`` is normalized (see the module docstring).
    On failure, cells after the failing one lose their stale outputs and counts,
    so the notebook shows exactly how far the run got.
    """
    work = nbformat.from_dict(copy.deepcopy(nb))  # the caller's nb stays as read
    work.metadata.pop("widgets", None)  # state of an earlier run would outlive removed widgets
    client = make_client(work, cwd, timeout)
    current = {"index": None}

    def remember(cell: NotebookNode, cell_index: int) -> None:
        current["index"] = cell_index

    client.on_cell_execute = remember
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = f"{exc.ename}: {_first_line(exc.evalue)}"
    except Exception as exc:  # timeouts, a dead kernel, a kernel that does not start
        error = f"{type(exc).__name__}: {_first_line(str(exc))}"
    seconds = time.perf_counter() - start
    failed = current["index"] if error is not None else None
    if failed is not None:
        error = f"cell {failed}: {error}"
        for cell in work.cells[failed + 1 :]:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
    normalize(work, name)
    return Outcome(work, seconds, error, failed)


def _renumber_widget_ids(nb: NotebookNode, name: str) -> NotebookNode:
    """Replace the random widget model ids by ids that depend only on ``name`` and their order."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE_KEY, {}).get("state", {})
    ids: list[str] = list(state)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW_KEY)
            if isinstance(view, dict) and view.get("model_id") and view["model_id"] not in ids:
                ids.append(view["model_id"])
    if not ids:
        return nb
    mapping = {
        old: uuid.uuid5(_WIDGET_ID_NAMESPACE, f"{name}:{k}").hex for k, old in enumerate(ids)
    }
    pattern = re.compile("|".join(re.escape(old) for old in mapping))
    text = pattern.sub(lambda m: mapping[m.group(0)], json.dumps(nb))
    return nbformat.from_dict(json.loads(text))


def normalize(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """Make an executed notebook stable across runs, in place; returns it.

    Removes ``metadata.execution`` timing, clears empty code cells, renumbers
    widget model ids and drops widget state above ``MAX_WIDGET_STATE_BYTES``.
    """
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and not cell.source.strip():
            cell.outputs = []
            cell.execution_count = None
    widgets = nb.metadata.get("widgets")
    if widgets is not None and len(json.dumps(widgets)) > MAX_WIDGET_STATE_BYTES:
        print(
            f"note: {name}: widget state over {MAX_WIDGET_STATE_BYTES} bytes not stored",
            file=sys.stderr,
        )
        del nb.metadata["widgets"]
    renumbered = _renumber_widget_ids(nb, name)
    if renumbered is not nb:
        nb.clear()
        nb.update(renumbered)
    return nb


def to_html(nb: NotebookNode) -> str:
    """The executed notebook as a standalone HTML page (nbconvert's lab template)."""
    from nbconvert import HTMLExporter  # heavy import, only when HTML is asked for

    quiet = logging.getLogger("vaelab.tooling.execute.html")
    quiet.setLevel(logging.ERROR)  # nbconvert warns about images without alt text
    body, _ = HTMLExporter(log=quiet).from_notebook_node(nb)
    return body


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.tooling.execute",
        description="Execute notebooks in fresh kernels; one line each, exit 1 if any fails.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="DIR",
                       help="write DIR/<name>.ipynb and DIR/<name>.html; sources untouched")
    where.add_argument("--in-place", action="store_true",
                       help="store outputs in the source notebooks (only those that succeed)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per-cell timeout in seconds (default {DEFAULT_TIMEOUT})")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NB")
    return parser.parse_args(argv)


def _check_destinations(args: argparse.Namespace, paths: Sequence[Path]) -> list[str]:
    """Why the results could not be stored (checked before hours of execution), if at all.
    --out never replaces a source notebook (--out set to the sources' own folder)."""
    try:
        if args.in_place:
            check_destinations(paths, hint="make the notebooks writable")
        else:
            check_destinations([args.out / name for path in paths
                                for name in (path.name, f"{path.stem}.html")], inputs=paths,
                               hint="choose another --out folder (or --in-place to store "
                               "the outputs in the sources)")
    except OutputPathError as exc:
        return [str(exc)]
    return []


def _store(args: argparse.Namespace, path: Path, outcome: Outcome) -> None:
    """Write what ``outcome`` holds where the arguments say (``OSError`` if that fails)."""
    if args.in_place:
        if outcome.ok:
            text = notebook_text(outcome.nb)
            # Unchanged outputs leave the file (and its mtime) alone.
            if path.read_text(encoding="utf-8") != text:
                write_text_atomic(path, text)
    else:
        # Failed runs are written too: the traceback sits in the failing cell.
        write_text_atomic(args.out / path.name, notebook_text(outcome.nb))
        write_text_atomic(args.out / f"{path.stem}.html", to_html(outcome.nb))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 a notebook failed or could
    not be written, 2 bad arguments, 130 interrupted)."""
    args = _parse_args(argv)
    if args.timeout < 1:
        print(f"error: --timeout must be at least 1 second, got {args.timeout}", file=sys.stderr)
        return 2
    # Read and check everything first: a typo in the last path or an output folder that
    # cannot be written must not cost a long run of the others.
    masters = []
    problems = []
    for path in args.notebooks:
        try:
            masters.append((path, read_notebook(path)))
        except NotebookInputError as exc:
            problems.append(str(exc))
    names = [path.name for path, _ in masters]
    if len(set(names)) != len(names) and not args.in_place:
        problems.append("two notebooks share a file name; their outputs in --out would collide")
    problems += _check_destinations(args, [path for path, _ in masters])
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    width = max(len(name) for name in names)
    failures = 0
    try:
        for path, nb in masters:
            outcome = execute_notebook(nb, path.resolve().parent, args.timeout, path.name)
            problems = [] if outcome.ok else [outcome.error]
            try:
                _store(args, path, outcome)
            except OSError as exc:  # a full disk, a folder changed during the run
                problems.append(f"not saved: {exc}")
            status = "FAIL" if problems else "ok"
            failures += bool(problems)
            line = f"{status:<5} {path.name:<{width}}  {outcome.seconds:6.1f} s"
            print("  ".join([line, *problems]), flush=True)
    except KeyboardInterrupt:
        print("error: interrupted; notebooks not yet reported were not written", file=sys.stderr)
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
