"""The otter-grader plugin that sets up a graded run of a vaelab notebook.

``make assign`` names it in every otter master (``plugins:``), so the autograder runs it in
``otter run``, ``otter grade`` (docker) and on Gradescope alike, before the submission is
executed: the checks' feedback shows no expected value (``VAELAB_GRADING=1``), and a
notebook that trains through ``vaelab.training.train_or_load`` reuses the models shipped in
the autograder's ``checkpoints/`` instead of training them for every student.
"""

from __future__ import annotations

import os
from pathlib import Path

from otter.plugins import AbstractOtterPlugin

from vaelab.tooling.course import CHECKPOINTS


class CourseSettings(AbstractOtterPlugin):
    """Sets the environment that the graded notebook's kernel inherits."""

    def before_grading(self, config: object) -> None:
        # otter calls this in the submission's folder, where it put the autograder's files.
        os.environ["VAELAB_GRADING"] = "1"
        os.environ.pop("VAELAB_TRAIN_FRESH", None)
        shipped = Path(CHECKPOINTS).resolve()
        if shipped.is_dir():
            os.environ["VAELAB_CHECKPOINT_DIR"] = str(shipped)
