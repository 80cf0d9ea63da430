"""Browser tests: JupyterLab from the project's venv, driven by Debian's Chromium via Playwright.

Fixtures (session scope, one server and one browser for the whole run):

- ``lab_server``: JupyterLab on 127.0.0.1, a free port, a random token, ``--no-browser``;
  config, runtime, data, settings and workspaces in a temporary folder (news, update
  checks, autosave and notebook windowing off). It serves a temporary copy of
  ``notebooks/`` (and ``tests/e2e/fixtures/``), so running cells in the browser never
  touches the committed notebooks. Its whole process tree (server and kernels) is ended
  at teardown, on failure and on KeyboardInterrupt alike.
- ``browser``: headless Chromium (``/usr/bin/chromium`` or ``chromium`` on PATH).
- ``lab``: opens a notebook in a fresh page and returns a ``NotebookPage``.

Every test here is skipped, with the reason, when no Chromium (or no Playwright) exists,
so ``make test`` runs the browser tests exactly where a Chromium is installed.

Artefacts go to ``build/e2e/``: screenshots, ``jupyterlab.log`` and ``latency.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_driver import (
    CHROMIUM_ARGS,
    FIXTURE_DIR,
    LATENCY_CHANGES,
    LATENCY_ROWS,
    LATENCY_TARGET_MEDIAN_MS,
    LATENCY_TARGET_WORST_MS,
    OUT_DIR,
    Lab,
    LabServer,
    discover_notebooks,
    find_chromium,
    latency_table,
)


def _skip_reason() -> str | None:
    if find_chromium() is None:
        return ("no Chromium found (/usr/bin/chromium or chromium on PATH): install it with "
                "`apt-get install chromium` to run the browser tests (.ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing from the venv (pip install -r requirements.txt)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def e2e_out() -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("e2e.log", "latency.json"):
        (OUT_DIR / stale).unlink(missing_ok=True)
    return OUT_DIR


@pytest.fixture(scope="session")
def lab_server(e2e_out: Path) -> Iterator[LabServer]:
    home = Path(tempfile.mkdtemp(prefix="vaelab-e2e-"))
    served = home / "served"
    # A copy: cells run in the browser must never change the committed notebooks.
    (served / "notebooks").mkdir(parents=True)
    for notebook in discover_notebooks():
        shutil.copy2(notebook, served / "notebooks" / notebook.name)
    shutil.copytree(FIXTURE_DIR, served / "fixtures", dirs_exist_ok=True)
    server = LabServer(served, home / "jupyter", e2e_out / "jupyterlab.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    assert chromium is not None  # the whole suite is skipped otherwise
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def lab(lab_server: LabServer, browser: Any) -> Iterator[Lab]:
    lab = Lab(lab_server, browser)
    try:
        yield lab
    finally:
        lab.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not LATENCY_ROWS:
        return
    terminalreporter.section("slider responsiveness (browser, keydown -> new output)")
    terminalreporter.write_line(
        f"target: median <= {LATENCY_TARGET_MEDIAN_MS:.0f} ms, worst <= "
        f"{LATENCY_TARGET_WORST_MS:.0f} ms over {LATENCY_CHANGES} changes; "
        f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for line in latency_table().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {OUT_DIR / 'latency.json'}")
