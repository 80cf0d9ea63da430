"""Settings shared by every test module."""

import os
import shutil
import subprocess

import pytest
from hypothesis import settings

import vaelab  # noqa: F401 - its thread policy, before any test module imports torch

# Property tests draw a fixed set of examples (seeded from each test's code): a run is
# reproducible, and CI cannot turn red on an example that no earlier run tried.
# HYPOTHESIS_PROFILE=explore draws new examples on every run, to hunt for bugs (that is how
# the rounding error of vaelab.kl's formula was found).
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))


@pytest.fixture(scope="session")
def unprivileged() -> list[str]:
    """A command prefix that runs a program without root's override of file permissions.

    The machines run the tests as root, which reads and writes whatever the permission bits
    say; a test of an unreadable file or a read-only folder runs its code in a subprocess
    started with this prefix (``[]`` when the tests already run as an ordinary user).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"] if setpriv else []
    probe = "import os, sys; sys.exit(0 if not os.access('/proc/1/root', os.W_OK) else 1)"
    if not prefix or subprocess.run([*prefix, "python3", "-c", probe]).returncode != 0:
        pytest.skip("running as root and cannot drop root's capabilities with setpriv, so "
                    "file permissions cannot be tested")
    return prefix
