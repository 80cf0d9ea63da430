"""Notebook tooling behind the Makefile: nothing here is imported by the maths.

- ``vaelab.tooling.execute``: run notebooks headless in a fresh kernel of this
  interpreter, into ``build/`` (``make run``) or in place (``make outputs``).
- ``vaelab.tooling.student``: write student versions (solutions blanked, outputs
  cleared) and instructor versions of the master notebooks (``make student``).
- ``vaelab.tooling.nbio``: reading notebooks with clear errors, atomic writes.
- ``vaelab.tooling.nbcode``: what notebook cells call (for the notebook tests).
- ``vaelab.tooling.assign``: the graded versions and the graders' inputs (``make assign``);
  ``vaelab.tooling.course``: what the graders' environment needs beside them (nbgrader's
  config, the autograder's requirements and wheel, the shipped models);
  ``vaelab.tooling.otter_plugin``: the otter plugin that sets up a graded run.

The other modules here (benchmark, reproduction run) describe themselves.
"""
