"""setuptools' working folders, the one build setting pyproject.toml cannot hold.

By default setuptools writes build/ and src/vaelab.egg-info/ into the source tree while it
builds or installs (`pip install .`, `pip install -e .`, `pip wheel .`). Installing must not
write into the checkout (it may be read-only, shared by a class, or someone's git work tree),
so both go to a temporary folder, removed when the build step ends. Everything else about
the package is in pyproject.toml.
"""

import atexit
import shutil
import tempfile

from setuptools import setup

work = tempfile.mkdtemp(prefix="vaelab-build-")
atexit.register(shutil.rmtree, work, ignore_errors=True)
setup(options={"build": {"build_base": work}, "egg_info": {"egg_base": work}})
