"""Drive JupyterLab in headless Chromium: the server, a notebook page, its slider widgets.

Used by tests/e2e (conftest.py holds the fixtures). Nothing here imports vaelab: the
browser tests look at the series from the outside, as a student does.

- ``LabServer``: JupyterLab from this venv on 127.0.0.1, a free port, a random token,
  every setting in a temporary folder; ``stop()`` ends its whole process tree.
- ``NotebookPage``: one notebook in a browser page: run all, wait for idle, errors,
  screenshots, the cells whose outputs hold sliders (``WidgetView``).
- ``record_latency`` / ``latency_table``: the responsiveness benchmark's rows.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
OUT_DIR = ROOT / "build" / "e2e"

#: Flags Debian's Chromium needs here: root needs --no-sandbox; the rest stop it from
#: trying to reach outside hosts (there is no internet in CI).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 1000}
SERVER_START_TIMEOUT_S = 90.0
#: Responsiveness targets from the issue (a benchmark: printed and written, never asserted).
LATENCY_TARGET_MEDIAN_MS = 150.0
LATENCY_TARGET_WORST_MS = 400.0
LATENCY_CHANGES = 20


def find_chromium() -> str | None:
    """The Chromium to drive: $VAELAB_CHROMIUM, /usr/bin/chromium, or chromium on PATH."""
    for candidate in (os.environ.get("VAELAB_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


# ------------------------------------------------------------------------ discovery


def notebook_dir() -> Path:
    """notebooks/, or the folder in $VAELAB_E2E_NOTEBOOKS (to try the tests on other copies)."""
    override = os.environ.get("VAELAB_E2E_NOTEBOOKS")
    return Path(override).resolve() if override else NOTEBOOK_DIR


def discover_notebooks() -> list[Path]:
    """The series' notebooks (NN_*.ipynb), found when the tests are collected."""
    return sorted(notebook_dir().glob("[0-9][0-9]_*.ipynb"))


# ------------------------------------------------------------------------ processes


def log(message: str) -> None:
    """A time-stamped line in build/e2e/e2e.log: where a slow or stuck run spends its time."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "e2e.log", "a") as f:
        f.write(f"{time.strftime('%H:%M:%S')} {time.monotonic():10.2f}  {message}\n")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _default_data_dir() -> str | None:
    shared = ROOT.parent / "shared" / "data" / "mnist"
    return str(shared) if shared.is_dir() else None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


class LabServer:
    """A JupyterLab server in its own process group, with every setting in ``home``."""

    def __init__(self, root_dir: Path, home: Path, log_path: Path) -> None:
        self.root_dir = root_dir
        self.home = home
        self.log_path = log_path
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _configure(self) -> dict[str, str]:
        config, runtime = self.home / "config", self.home / "runtime"
        settings, workspaces = self.home / "lab-settings", self.home / "lab-workspaces"
        for folder in (config, runtime, settings, workspaces, self.home / "data",
                       self.home / "ipython"):
            folder.mkdir(parents=True, exist_ok=True)
        _write_json(config / "jupyter_server_config.json", {
            "ServerApp": {
                "ip": "127.0.0.1", "port": self.port, "port_retries": 0,
                "open_browser": False, "root_dir": str(self.root_dir),
                "terminals_enabled": False,
                "allow_root": os.geteuid() == 0,  # CI containers run as root
                # A backstop if teardown never runs: stop idle kernels and the server.
                "shutdown_no_activity_timeout": 1800,
            },
            "IdentityProvider": {"token": self.token},
            "MappingKernelManager": {"cull_idle_timeout": 1800, "cull_interval": 300},
            "LabApp": {
                "news_url": None,
                "extension_manager": "readonly",  # never query PyPI for extensions
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                # window.jupyterapp: the tests read kernel state and cell outputs from it.
                "expose_app_in_browser": True,
            },
        })
        # User settings: no news toast over the notebook, no autosave, every cell in the DOM
        # (the default windowing detaches off-screen cells, hiding their outputs).
        _write_json(settings / "@jupyterlab" / "apputils-extension"
                    / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})
        _write_json(settings / "@jupyterlab" / "docmanager-extension"
                    / "plugin.jupyterlab-settings", {"autosave": False})
        _write_json(settings / "@jupyterlab" / "notebook-extension"
                    / "tracker.jupyterlab-settings", {"windowingMode": "none"})
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
            "IPYTHONDIR": str(self.home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # The same settings as make test / make outputs.
            "TQDM_DISABLE": "1",
            "VAELAB_TRAIN_FRESH": "1",
        })
        data_dir = env.get("VAELAB_DATA_DIR") or _default_data_dir()
        if data_dir:
            env["VAELAB_DATA_DIR"] = data_dir
        return env

    def start(self) -> None:
        env = self._configure()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser"],
            cwd=self.root_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)
        log(f"JupyterLab starting on port {self.port}")
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("GET", "/api/status")
                log("JupyterLab answers")
                return
            time.sleep(0.25)
        raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S:.0f} s; "
                           f"see {self.log_path}")

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every kernel session (each notebook gets a fresh kernel; frees memory)."""
        with contextlib.suppress(Exception):
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """End the server and every process it started (kernels live in their own sessions)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            import psutil

            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except Exception:
            tree = []
        # Polite first: the server's SIGTERM handler shuts its kernels down.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for child in tree:
            with contextlib.suppress(Exception):
                if child.is_running():
                    child.kill()
        if self._log is not None:
            self._log.close()


# ------------------------------------------------------------------------ page helpers

# Text shown by a cell's outputs apart from the sliders themselves, and its pictures.
_STATE_JS = """
(area) => {
  const texts = [];
  const walker = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || el.closest('.widget-slider')) continue;
    const t = node.textContent.trim();
    if (t) texts.push(t);
  }
  const imgs = [...area.querySelectorAll('img')].map(i => i.currentSrc || i.src);
  return {text: texts.join('\\n'), imgs: imgs};
}
"""

# Installs a watcher that stamps the first keydown on the handle (t0) and the first
# animation frame after the output shows the awaited change (t1), both in the page's clock.
_WATCH_JS = """
([area, handle, before, need]) => {
  const stateOf = STATE_FN;
  const w = {t0: null, t1: null, done: false};
  window.__vaelabWatch = w;
  const ready = () => {
    const s = stateOf(area);
    if (need.text && s.text === before.text) return false;
    if (need.imgs) {
      if (s.imgs.length < before.imgs.length) return false;
      if (s.imgs.some(src => before.imgs.includes(src))) return false;
      if (![...area.querySelectorAll('img')].every(i => i.complete)) return false;
    }
    return true;
  };
  const check = () => {
    if (w.done || w.t0 === null || !ready()) return;
    w.done = true;
    obs.disconnect();
    requestAnimationFrame(() => { w.t1 = performance.now(); });
  };
  const obs = new MutationObserver(check);
  obs.observe(area, {subtree: true, childList: true, attributes: true, characterData: true});
  area.addEventListener('load', check, true);
  handle.addEventListener('keydown', () => { if (w.t0 === null) w.t0 = performance.now(); },
                          {capture: true, once: true});
}
""".replace("STATE_FN", _STATE_JS.strip())

_KERNEL_IDLE_JS = """
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext;
  if (!ctx || !ctx.session || !ctx.session.kernel) return false;
  if (ctx.session.kernel.status !== 'idle') return false;
  const prompts = [...panel.node.querySelectorAll('.jp-InputPrompt')];
  return !prompts.some(p => p.textContent.includes('*'));
}
"""

_ERRORS_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const found = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    const tags = cell.sharedModel.getMetadata().tags || [];
    const source = cell.sharedModel.getSource().slice(0, 200);
    for (const out of outputs) {
      if (out.output_type === 'error') {
        found.push({cell: i, kind: 'error', ename: out.ename, evalue: out.evalue,
                    tags: tags, source: source});
      } else if (out.output_type === 'stream' && out.name === 'stderr') {
        found.push({cell: i, kind: 'stderr', text: String(out.text).slice(0, 500),
                    tags: tags, source: source});
      }
    }
  }
  return found;
}
"""


def replaced(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Did the outputs update: every picture replaced (or, with no picture, new text)?"""
    if before["imgs"]:
        return (len(after["imgs"]) >= len(before["imgs"])
                and not set(after["imgs"]) & set(before["imgs"]))
    return after["text"] != before["text"]


@dataclass
class Slider:
    """One ipywidgets slider in the page: its description and its noUiSlider handle."""

    description: str
    root: Any  # playwright Locator of the .widget-slider element
    handle: Any  # Locator of the .noUi-handle (role=slider)

    def value(self) -> float:
        """The slider's value as its view sent it to the kernel (noUiSlider's own number).

        (aria-valuenow is rounded to one decimal; the readout to its format.) Equal to the
        kernel's value once the slider has been moved: before, the kernel may hold an
        off-grid start value (an MLE, say) that the handle shows snapped to the grid.
        """
        return float(self.root.locator(".noUi-target").evaluate(
            "el => Number(el.noUiSlider.get())"))

    def bounds(self) -> tuple[float, float]:
        low, high = self.root.locator(".noUi-target").evaluate(
            "el => [el.noUiSlider.options.range.min, el.noUiSlider.options.range.max]")
        return float(low), float(high)

    def readout(self) -> str:
        """The number as the slider shows it (its readout_format)."""
        return self.root.locator(".widget-readout").inner_text().strip()


@dataclass
class WidgetView:
    """The outputs of one code cell that holds sliders: what a student moves and sees."""

    page: Any
    cell_index: int
    area: Any  # Locator of the cell's .jp-Cell-outputArea
    sliders: list[Slider] = field(default_factory=list)

    @property
    def descriptions(self) -> list[str]:
        return [s.description for s in self.sliders]

    @property
    def name(self) -> str:
        joined = "_".join(re.sub(r"[^A-Za-z0-9]+", "-", d).strip("-") for d in self.descriptions)
        return f"cell{self.cell_index:02d}_{joined}"

    def slider(self, description: str) -> Slider:
        for s in self.sliders:
            if s.description == description:
                return s
        raise KeyError(f"no slider {description!r} in {self.descriptions}")

    def values(self) -> dict[str, float]:
        """Slider values as shown on screen (the readout text, parsed)."""
        return {s.description: float(s.readout()) for s in self.sliders}

    def state(self) -> dict[str, Any]:
        return self.area.evaluate(_STATE_JS)

    def settle(self, quiet_s: float = 0.3, timeout_s: float = 20.0) -> dict[str, Any]:
        """Wait until the outputs stop changing for ``quiet_s``; return their state."""
        deadline = time.monotonic() + timeout_s
        last, since = self.state(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.state()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return now
        return last

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool],
                   timeout_s: float = 20.0) -> dict[str, Any]:
        """Poll the outputs' state until ``predicate(state)``; return the last state seen."""
        deadline = time.monotonic() + timeout_s
        state = self.state()
        while not predicate(state) and time.monotonic() < deadline:
            time.sleep(0.05)
            state = self.state()
        return state

    def step(self, slider: Slider, key: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """Press ``key`` on ``slider`` and wait for its update: new pictures, else new text."""
        before = self.state()
        self.press(slider, key)
        return self.wait_until(lambda s: replaced(before, s), timeout_s)

    def press(self, slider: Slider, key: str) -> None:
        """A student's keyboard step: focus the slider's handle and press ``key``."""
        slider.handle.focus()
        self.page.keyboard.press(key)

    def timed_press(self, slider: Slider, key: str, need: dict[str, bool],
                    timeout_s: float = 15.0) -> float:
        """Press ``key`` on the handle; milliseconds until the outputs in ``need`` changed.

        Measured in the browser: from the keydown reaching the handle to the first frame
        after the awaited change is in the DOM (new text, every picture replaced).
        """
        before = self.state()
        self.page.evaluate(
            _WATCH_JS, [self.area.element_handle(), slider.handle.element_handle(), before, need])
        self.press(slider, key)
        self.page.wait_for_function("() => window.__vaelabWatch.t1 !== null",
                                    timeout=timeout_s * 1000)
        return float(self.page.evaluate("() => window.__vaelabWatch.t1 - window.__vaelabWatch.t0"))

    def figure_pixels(self) -> list[bytes]:
        """Screenshots (PNG bytes) of each picture in the outputs, as rendered on screen."""
        imgs = self.area.locator("img")
        return [imgs.nth(i).screenshot() for i in range(imgs.count())]

    def screenshot(self, path: Path) -> bytes:
        self.area.scroll_into_view_if_needed()
        return self.area.screenshot(path=str(path))


class NotebookPage:
    """One notebook open in the shared JupyterLab page (one notebook at a time)."""

    def __init__(self, page: Any, server: LabServer, rel_path: str) -> None:
        self.page = page
        self.server = server
        self.rel_path = rel_path
        self.run_seconds: float | None = None
        self.panel: Any = None  # Locator of this notebook's panel, set by open()
        self.console_errors: list[str] = []
        self._on_error = lambda exc: self.console_errors.append(str(exc))
        page.on("pageerror", self._on_error)

    def open(self, timeout_s: float = 120.0) -> None:
        """Open the notebook (as a double-click in the file browser does) and wait for idle."""
        # (The command returns the widget: keep it in the page, it is no JSON.)
        self.page.evaluate(
            "async path => { await window.jupyterapp.commands.execute('docmanager:open',"
            " {path: path, factory: 'Notebook'}); return null; }", self.rel_path)
        self.page.wait_for_function(
            "path => { const w = window.jupyterapp.shell.currentWidget;"
            " return w && w.context && w.context.path === path && w.content"
            " && w.content.widgets.length > 0; }",
            arg=self.rel_path, timeout=timeout_s * 1000, polling=200)
        panel_id = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.node.id")
        self.panel = self.page.locator(f"[id='{panel_id}']")
        self.page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout_s * 1000, polling=200)
        log(f"{self.rel_path}: open and kernel idle")

    def run_all(self, timeout_s: float) -> float:
        """Run > Run All Cells from the menu, as a student does; seconds until idle."""
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-item:visible",
                          has_text=re.compile(r"^Run All Cells")).first.click()
        # Let the first cell start before waiting for idle.
        self.page.wait_for_function(
            "() => [...window.jupyterapp.shell.currentWidget.node"
            ".querySelectorAll('.jp-InputPrompt')]"
            ".some(p => p.textContent.includes('*') || /\\[\\d+\\]/.test(p.textContent))",
            timeout=30_000, polling=100)
        self.wait_idle(timeout_s)
        log(f"{self.rel_path}: Run All Cells done")
        return time.monotonic() - start

    def wait_idle(self, timeout_s: float) -> None:
        # Idle twice in a row, 0.5 s apart: the kernel is briefly idle between two cells.
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = max(1.0, deadline - time.monotonic())
            self.page.wait_for_function(_KERNEL_IDLE_JS, timeout=remaining * 1000, polling=200)
            time.sleep(0.5)
            if self.page.evaluate(_KERNEL_IDLE_JS):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.rel_path}: kernel still busy after {timeout_s} s")

    def problems(self) -> list[dict[str, Any]]:
        """Error and stderr outputs of every code cell, in notebook order."""
        return self.page.evaluate(_ERRORS_JS)

    def shown_errors(self) -> list[str]:
        """Tracebacks visible in the page (what a student sees in red)."""
        loc = self.panel.locator(".jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']")
        return [loc.nth(i).inner_text()[:300] for i in range(loc.count())]

    def screenshot_notebook(self, path: Path, max_height: int = 16000) -> None:
        """The whole notebook in one picture: grow the viewport to the notebook's height."""
        scroller = self.panel.locator(".jp-WindowedPanel-outer").first
        # Height of the cells themselves (scrollHeight adds JupyterLab's scroll-past-end room).
        content = scroller.evaluate(
            "el => { const cells = el.querySelectorAll('.jp-Cell');"
            " const last = cells[cells.length - 1];"
            " return last.getBoundingClientRect().bottom - el.getBoundingClientRect().top"
            " + el.scrollTop; }")
        chrome = self.page.evaluate("() => window.innerHeight") - scroller.bounding_box()["height"]
        self.page.set_viewport_size({"width": VIEWPORT["width"],
                                     "height": int(min(max_height, content + chrome + 40))})
        self.page.wait_for_timeout(500)
        scroller.evaluate("el => { el.scrollTop = 0; }")
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(VIEWPORT)
        self.page.wait_for_timeout(200)

    def widgets(self) -> list[WidgetView]:
        """Every code cell whose outputs hold at least one slider, in notebook order."""
        cells = self.panel.locator(".jp-Notebook .jp-Cell")
        found = []
        for i in range(cells.count()):
            area = cells.nth(i).locator(".jp-Cell-outputArea")
            if area.count() == 0:
                continue
            roots = area.locator(".widget-slider")
            if roots.count() == 0:
                continue
            view = WidgetView(self.page, i, area)
            for j in range(roots.count()):
                root = roots.nth(j)
                view.sliders.append(Slider(
                    description=root.locator(".widget-label").first.inner_text().strip(),
                    root=root, handle=root.locator(".noUi-handle").first))
            found.append(view)
        return found

    def close(self) -> None:
        """Shut the notebook's kernel down and close its tab without saving."""
        with contextlib.suppress(Exception):
            self.page.remove_listener("pageerror", self._on_error)
            self.page.evaluate(
                "async () => { const w = window.jupyterapp.shell.currentWidget;"
                " if (!w || !w.sessionContext) return;"
                " await w.sessionContext.shutdown(); w.context.model.dirty = false;"
                " w.dispose(); }")
        self.server.shutdown_kernels()


class Lab:
    """One JupyterLab page in the browser, reused for every notebook (loads the app once)."""

    def __init__(self, server: LabServer, browser: Any) -> None:
        self.server = server
        self.browser = browser
        self.page: Any = None

    def _fresh_page(self, timeout_s: float = 120.0) -> Any:
        if self.page is not None:
            with contextlib.suppress(Exception):
                self.page.close()
        page = self.browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.set_default_timeout(30_000)
        page.goto(f"{self.server.base_url}/lab?reset&token={self.server.token}",
                  timeout=timeout_s * 1000)
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell"
            " && document.querySelector('.jp-LabShell')",
            timeout=timeout_s * 1000, polling=200)
        # The app's plugins restore their layout after start; then fold the file browser
        # away so the notebook gets the width in screenshots.
        page.evaluate("() => window.jupyterapp.restored")
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        log("JupyterLab page loaded")
        self.page = page
        return page

    def open(self, rel_path: str) -> NotebookPage:
        """Open ``rel_path`` (relative to the served folder); retries once on a fresh page."""
        for attempt in range(2):
            page = self.page if self.page is not None and attempt == 0 else self._fresh_page()
            notebook = NotebookPage(page, self.server, rel_path)
            try:
                notebook.open()
                return notebook
            except Exception as exc:
                log(f"{rel_path}: open failed ({type(exc).__name__}: {str(exc)[:300]})")
                notebook.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.page is not None:
            with contextlib.suppress(Exception):
                self.page.close()
            self.page = None


# ------------------------------------------------------------------------ latency benchmark

LATENCY_ROWS: list[dict[str, Any]] = []


def record_latency(notebook: str, widget: str, sliders: list[str], samples_ms: list[float]
                   ) -> dict[str, Any]:
    """Keep one widget's latencies for the table and build/e2e/latency.json."""
    row = {
        "notebook": notebook, "widget": widget, "sliders": sliders, "changes": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 1),
        "worst_ms": round(max(samples_ms), 1),
        "samples_ms": [round(s, 1) for s in samples_ms],
    }
    # The changes cycle through the sliders in order: sample i moved sliders[i % n].
    row["per_slider"] = {
        name: {"median_ms": round(statistics.median(samples_ms[k::len(sliders)]), 1),
               "worst_ms": round(max(samples_ms[k::len(sliders)]), 1)}
        for k, name in enumerate(sliders)}
    row["meets_target"] = (row["median_ms"] <= LATENCY_TARGET_MEDIAN_MS
                           and row["worst_ms"] <= LATENCY_TARGET_WORST_MS)
    LATENCY_ROWS.append(row)
    _write_latency_json()
    return row


def _write_latency_json() -> None:
    load = os.getloadavg()
    _write_json(OUT_DIR / "latency.json", {
        "what": "browser time from a slider keydown to the first frame showing the new output",
        "target": {"median_ms": LATENCY_TARGET_MEDIAN_MS, "worst_ms": LATENCY_TARGET_WORST_MS},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_write": [round(x, 2) for x in load]},
        "widgets": LATENCY_ROWS,
    })


def latency_table() -> str:
    head = f"{'notebook':<28} {'widget':<28} {'n':>3} {'median ms':>10} {'worst ms':>9}  target"
    lines = [head, "-" * len(head)]
    for r in LATENCY_ROWS:
        ok = "ok" if r["meets_target"] else "MISSED"
        lines.append(f"{r['notebook']:<28} {r['widget']:<28} {r['changes']:>3} "
                     f"{r['median_ms']:>10.1f} {r['worst_ms']:>9.1f}  {ok}")
    return "\n".join(lines)


