"""``python -m vaelab.student_notebooks [FOLDER]``: see the package's docstring."""

from vaelab.student_notebooks import main

raise SystemExit(main())
