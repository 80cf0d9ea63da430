"""What the graders' environment needs beside the graded notebooks (``make assign``).

- ``nbgrader_config``: the course folder's ``nbgrader_config.py``: course id, an exchange
  folder, the per-cell timeout, and the settings of a graded run (``VAELAB_GRADING=1``,
  ``VAELAB_CHECKPOINT_DIR`` at the course's ``checkpoints/``), so nothing is set by hand;
- ``autograder_requirements``: what otter's autograder installs: the vaelab wheel (built by
  ``build_wheel`` from the project) and the exact versions of its dependencies that this
  environment runs;
- ``train_checkpoints``: the models a master trains through ``vaelab.training.
  train_or_load``, trained once (or reused from the folder) by running the master up to
  its last such call with ``VAELAB_CHECKPOINT_DIR`` at the folder. The files are the cache
  ``train_or_load`` keeps (keyed by configuration, architecture and data), so a graded run
  pointed at them reuses them through the same call, and a student's own run, which has
  no such folder, trains.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from nbformat import NotebookNode

from vaelab.tooling.execute import execute_notebook
from vaelab.tooling.nbcode import called_names

COURSE_ID = "vaelab"
# The longest cell of a graded run: notebook 05's toy models, 16 s on a 2-core CPU that other
# jobs half used (notebook 04 reuses its shipped models: 9 s); a grading server that runs
# several kernels at once on the same cores needs several times that.
CELL_TIMEOUT_S = 300
CHECKPOINTS = "checkpoints"
OTTER_PLUGIN = "vaelab.tooling.otter_plugin.CourseSettings"
TRAIN_OR_LOAD = "vaelab.training.train_or_load"
# Besides vaelab's own requirements, a graded run needs a Jupyter kernel.
_KERNEL = ("ipykernel",)


def nbgrader_config(timeout: int = CELL_TIMEOUT_S) -> str:
    """The text of the course folder's ``nbgrader_config.py``."""
    return f'''"""nbgrader course folder for the vaelab notebooks, written by `make assign`."""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides it)
HERE = Path(__file__).resolve().parent

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.course_id = "{COURSE_ID}"
# release_assignment, fetch_assignment, submit and collect meet here. On a shared hub,
# point it at a folder every student can write to (nbgrader's docs use /srv/nbgrader/exchange).
c.Exchange.root = str(HERE / "exchange")
# Per-cell limit of a graded run: notebook 05 trains its models in single cells.
c.Execute.timeout = {timeout}

# Graded runs: the checks' feedback shows no expected value, and notebook 04 reuses the
# models trained by `make assign` (checkpoints/) instead of training them for every student.
os.environ["VAELAB_GRADING"] = "1"
os.environ["VAELAB_CHECKPOINT_DIR"] = str(HERE / "{CHECKPOINTS}")
os.environ.pop("VAELAB_TRAIN_FRESH", None)
'''


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s]", requirement, maxsplit=1)[0]


def wheel_requirements(wheel: str | os.PathLike[str]) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel (what installing it pulls in)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")]


def pinned_requirements(requires: list[str] | None = None) -> list[str]:
    """``name==version`` for vaelab's requirements (``requires``, by default the installed
    vaelab's; extras left out) and a kernel, at the versions installed here (a local build
    label such as ``+cpu`` dropped: the registries serve the plain version)."""
    if requires is None:
        requires = importlib.metadata.requires("vaelab") or []
    names = [_name(r) for r in requires if "extra ==" not in r] + list(_KERNEL)
    pins = []
    for name in dict.fromkeys(names):
        version = importlib.metadata.version(name).split("+")[0]
        pins.append(f"{name}=={version}")
    return pins


def autograder_requirements(wheel: Path | None) -> str:
    """The autograder's requirements: the vaelab wheel, as otter puts it in the autograder
    (``files/<wheel>``, beside its environment.yml; pip reads the path from that folder), or
    the installed vaelab version if there is no wheel; then the pins of what it requires."""
    if wheel is None:
        vaelab, pins = f"vaelab=={importlib.metadata.version('vaelab')}", pinned_requirements()
    else:
        vaelab, pins = f"./files/{wheel.name}", pinned_requirements(wheel_requirements(wheel))
    return "\n".join([
        "# What otter's autograder installs besides otter-grader: vaelab and the versions it",
        "# was tested with. Written by `make assign`; install it from the unzipped autograder.",
        vaelab, *pins, ""])


def build_wheel(project: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Build vaelab's wheel from the project folder into ``dest``; the project is copied to a
    temporary folder first, so the build writes nothing into it. RuntimeError if it fails."""
    project, dest = Path(project), Path(dest)
    if not (project / "pyproject.toml").is_file() or not (project / "src" / "vaelab").is_dir():
        raise RuntimeError(f"{project} is not the vaelab project (no pyproject.toml and "
                           "src/vaelab): pass --project with the repository's folder")
    with tempfile.TemporaryDirectory(prefix="vaelab-wheel-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project / "src", copy / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
            if (project / name).is_file():
                shutil.copy2(project / name, copy / name)
        out = Path(tmp) / "wheel"
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "-q", "-w", str(out), str(copy)],
            capture_output=True, text=True)
        wheels = sorted(out.glob("vaelab-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"building the vaelab wheel failed:\n{done.stdout}{done.stderr}")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))


def training_cells(nb: NotebookNode) -> list[int]:
    """The indices of the cells that call ``vaelab.training.train_or_load``."""
    return [i for i, names in enumerate(called_names(nb)) if TRAIN_OR_LOAD in names]


def _set_environment(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed) inside the block; kernels started
    there inherit it."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def train_checkpoints(master: Path, nb: NotebookNode, folder: Path, timeout: int = 3600) -> None:
    """Run ``nb`` (the master at ``master``) up to its last ``train_or_load`` call with
    ``VAELAB_CHECKPOINT_DIR=folder``: what it trains lands in ``folder``, what ``folder``
    already holds for the same configuration is reused. RuntimeError if the run fails."""
    cells = training_cells(nb)
    if not cells:
        return
    part = NotebookNode({**nb, "cells": nb.cells[: cells[-1] + 1]})
    folder.mkdir(parents=True, exist_ok=True)
    with _environment(VAELAB_CHECKPOINT_DIR=str(folder.resolve()), VAELAB_TRAIN_FRESH=None,
                      TQDM_DISABLE="1"):
        outcome = execute_notebook(part, master.parent, timeout, master.name)
    if not outcome.ok:
        raise RuntimeError(f"{master}: training its models for the graders failed at "
                           f"{outcome.error}")
