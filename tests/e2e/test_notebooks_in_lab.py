"""The series as a student uses it: each notebook run in JupyterLab, each slider moved.

For every notebook in notebooks/ (found at collection time) plus the harness's own
fixture notebook: open it in a real JupyterLab page, Run > Run All Cells, wait for the
kernel to go idle, and assert that no cell shows an error. Then, for every cell whose
outputs hold sliders, step each slider with the keyboard (focus the handle, press an
arrow key) and assert that the readout shows what this file computes independently
(scipy.stats, not vaelab) for the new slider values, and that the picture changed.
Screenshots land in build/e2e/. The responsiveness benchmark (20 timed changes per
widget) is recorded, printed and written to build/e2e/latency.json, never asserted.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from lab_driver import (
    LATENCY_CHANGES,
    Lab,
    LabServer,
    NotebookPage,
    Slider,
    WidgetView,
    discover_notebooks,
    record_latency,
    replaced,
)
from scipy import stats

pytestmark = pytest.mark.e2e

#: Generous: notebook 04 trains a small VAE from scratch under VAELAB_TRAIN_FRESH=1.
RUN_ALL_TIMEOUT_S = 900.0

# ------------------------------------------------------------------ expected readouts
# Each function gets the slider values (description -> value, as the kernel has them)
# and returns the texts the widget's outputs must contain. They restate the maths with
# scipy on the notebooks' data, so a wrong formula or a stale readout in vaelab fails here.

NEWBORN_WEIGHTS_G = np.array([2642.0, 3500.0, 4358.0])
CAR_COUNTS = np.array([3, 4, 1])
FIXTURE_X = np.linspace(0.0, 2.0 * np.pi, 200)


def _selftest(v: dict[str, float]) -> list[str]:
    return [f"mean of sin(freq x): {np.sin(v['freq'] * FIXTURE_X).mean():.4f}"]


def _gaussian_01(v: dict[str, float]) -> list[str]:
    x = NEWBORN_WEIGHTS_G
    value = stats.norm.logpdf(x, loc=v["mu"], scale=v["sigma"]).sum()
    best = stats.norm.logpdf(x, loc=x.mean(), scale=x.std(ddof=0)).sum()  # -23.912
    return [f"log-likelihood = {value:.3f} (maximum {best:.3f})"]


def _poisson_02(v: dict[str, float]) -> list[str]:
    x, lam = CAR_COUNTS, v["lambda"]
    lam_hat = x.mean()  # 8/3
    value = stats.poisson.logpmf(x, lam).sum()
    best = stats.poisson.logpmf(x, lam_hat).sum()  # -5.1232
    return [f"log-likelihood = {value:.4f} (maximum {best:.4f})"]


def _elbo_03(v: dict[str, float]) -> list[str]:
    # Notebook 03's 1-D linear-Gaussian model: z ~ N(0, 1), x | z ~ N(W z + b, noise^2),
    # observed x = 2.0; q = N(m, s^2) with s = exp(log-std). All closed form.
    w, b, noise, x = 1.5, 0.5, 0.8, 2.0
    m, s = v["q mean"], np.exp(v["q log-std"])
    log_px = stats.norm.logpdf(x, loc=b, scale=np.hypot(w, noise))
    post_var = 1.0 / (1.0 + w**2 / noise**2)
    post_mean, post_std = post_var * w * (x - b) / noise**2, np.sqrt(post_var)
    kl = np.log(post_std / s) + (s**2 + (m - post_mean) ** 2) / (2 * post_var) - 0.5
    return [f"ELBO = {log_px - kl:.3f} ln p(x) = {log_px:.3f} gap = KL(q || p(z|x)) = {kl:.3f}"]


def _latent_04(v: dict[str, float]) -> list[str]:
    # The decoded picture comes from the trained model (no closed form): the figure check
    # asserts it changed; the readout must name the point the sliders chose.
    return [f"decoding z = ({v['z1']:+.2f}, {v['z2']:+.2f})"]


#: (notebook file name prefix, slider descriptions) -> expected texts for the slider values.
EXPECTED: dict[tuple[str, frozenset[str]], Callable[[dict[str, float]], list[str]]] = {
    ("selftest_slider", frozenset({"freq"})): _selftest,
    ("01_", frozenset({"mu", "sigma"})): _gaussian_01,
    ("02_", frozenset({"lambda"})): _poisson_02,
    ("03_", frozenset({"q mean", "q log-std"})): _elbo_03,
    ("04_", frozenset({"z1", "z2"})): _latent_04,
}


def expectation_for(notebook: str, view: WidgetView) -> Callable[[dict[str, float]], list[str]]:
    key = frozenset(view.descriptions)
    for (prefix, sliders), fn in EXPECTED.items():
        if notebook.startswith(prefix) and sliders == key:
            return fn
    raise AssertionError(
        f"{notebook}: a widget with sliders {sorted(key)} has no expected readout in "
        f"tests/e2e/test_notebooks_in_lab.py EXPECTED; add one computed independently")


# ------------------------------------------------------------------ fixtures

TARGETS = [f"notebooks/{p.name}" for p in discover_notebooks()] + [
    "fixtures/selftest_slider.ipynb"]


def _stem(rel_path: str) -> str:
    return Path(rel_path).stem


@pytest.fixture(scope="module", params=TARGETS, ids=_stem)
def ran(request: pytest.FixtureRequest, lab: Lab, e2e_out: Path) -> Iterator[NotebookPage]:
    """One notebook opened and run once (Run > Run All Cells); shared by the tests below."""
    notebook = lab.open(request.param)
    try:
        notebook.run_seconds = notebook.run_all(RUN_ALL_TIMEOUT_S)
        notebook.screenshot_notebook(e2e_out / f"{_stem(request.param)}.png")
        yield notebook
    finally:
        notebook.close()


def _step_key(slider: Slider, direction: int) -> tuple[str, int]:
    """The arrow key for one step in ``direction`` (+1 right, -1 left), reversed at a bound."""
    low, high = slider.bounds()
    value = slider.value()
    if direction > 0 and value >= high:
        direction = -1
    elif direction < 0 and value <= low:
        direction = 1
    return ("ArrowRight" if direction > 0 else "ArrowLeft"), direction


# ------------------------------------------------------------------ tests


def test_run_all_shows_no_error(ran: NotebookPage) -> None:
    problems = ran.problems()
    errors = [p for p in problems if p["kind"] == "error"]
    assert not errors, "cells show errors after Run All:\n" + "\n".join(
        f"  cell {p['cell']}: {p['ename']}: {p['evalue']}\n    {p['source'][:120]!r}"
        for p in errors)
    stderr = [p for p in problems if p["kind"] == "stderr"]
    assert not stderr, "cells print to stderr (warnings?) after Run All:\n" + "\n".join(
        f"  cell {p['cell']}: {p['text'][:300]!r}" for p in stderr)
    assert not ran.shown_errors(), ran.shown_errors()
    assert not ran.console_errors, f"JavaScript errors in the page: {ran.console_errors}"


def _flat(text: str) -> str:
    """Whitespace runs as one space (labels keep the kernel's spacing; HTML may not)."""
    return " ".join(text.split())


def check_widget(stem: str, view: WidgetView, e2e_out: Path) -> list[str]:
    """Step every slider of ``view`` once; the problems seen (empty when all is right)."""
    expected_for = expectation_for(stem, view)
    before = view.settle()
    view.screenshot(e2e_out / f"{stem}__{view.name}__before.png")
    figure_before = view.figure_pixels()
    moved_before = view.values()
    # One keyboard step on every slider, as a student would; snaps each onto its grid.
    for slider in view.sliders:
        view.step(slider, _step_key(slider, +1)[0])
    values = {s.description: s.value() for s in view.sliders}
    expected = expected_for(values)
    view.wait_until(lambda s: replaced(before, s) and all(t in _flat(s["text"]) for t in expected))
    after = view.settle()
    view.screenshot(e2e_out / f"{stem}__{view.name}__after.png")
    where = f"{stem} {view.name} at {values}"
    problems = []
    if view.values() == moved_before:
        problems.append(f"{where}: the sliders did not move ({moved_before})")
    for text in expected:
        if text not in _flat(after["text"]):
            problems.append(f"{where}: expected {text!r} in the outputs, they show "
                            f"{after['text']!r}")
    if not after["imgs"]:
        problems.append(f"{where}: no picture in the widget's outputs")
    elif not replaced(before, after):
        problems.append(f"{where}: the picture was not replaced")
    elif view.figure_pixels() == figure_before:
        problems.append(f"{where}: the new picture looks exactly like the old one")
    if "Traceback" in after["text"] or "Error" in after["text"]:
        problems.append(f"{where}: the outputs show an error: {after['text'][:300]!r}")
    return problems


def test_sliders_update_readout_and_figure(ran: NotebookPage, e2e_out: Path) -> None:
    stem = _stem(ran.rel_path)
    views = ran.widgets()
    if not views:
        pytest.skip(f"{stem} has no slider widgets")
    problems = [p for view in views for p in check_widget(stem, view, e2e_out)]
    assert not problems, "\n".join(problems)


def test_slider_latency_benchmark(ran: NotebookPage) -> None:
    """Benchmark, not a check: 20 keyboard steps per widget, timed in the browser."""
    stem = _stem(ran.rel_path)
    if ran.rel_path.startswith("fixtures/"):
        pytest.skip("the harness's own fixture is no widget of the series")
    views = ran.widgets()
    if not views:
        pytest.skip(f"{stem} has no slider widgets")
    for view in views:
        view.settle()
        # Calibrate: which parts of the outputs does a step change (text, pictures)?
        first = view.sliders[0]
        before = view.state()
        view.step(first, _step_key(first, +1)[0])
        after = view.settle()
        need = {"text": after["text"] != before["text"], "imgs": bool(before["imgs"])}
        directions = {s.description: 1 for s in view.sliders}
        samples = []
        for i in range(LATENCY_CHANGES):
            slider = view.sliders[i % len(view.sliders)]
            # Five steps one way, five back, so the values stay in a small range.
            turn = (i // len(view.sliders)) % 10 < 5
            key, directions[slider.description] = _step_key(slider, 1 if turn else -1)
            samples.append(view.timed_press(slider, key, need))
            view.settle(quiet_s=0.15)
        row = record_latency(stem, view.name, view.descriptions, samples)
        print(f"{stem} {view.name}: median {row['median_ms']} ms, worst {row['worst_ms']} ms")


# ------------------------------------------------------------------ student versions

_EXERCISE_LINE = re.compile(r"^\s*#\s*Exercise\s+(\d+\.\d+)\s*:", re.MULTILINE)


def first_exercise(master: Path) -> str | None:
    """The id ("1.2") of the first code cell holding a solution region, read from the JSON."""
    for cell in json.loads(master.read_text())["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and "### BEGIN SOLUTION" in source:
            match = _EXERCISE_LINE.search(source)
            return match.group(1) if match else None
    return None


MASTERS = [p for p in discover_notebooks() if first_exercise(p)]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_student_version_first_error_is_the_first_exercise(
    master: Path, lab: Lab, lab_server: LabServer, e2e_out: Path, tmp_path: Path
) -> None:
    """Generated like make student does; Run All must stop at the first exercise's stub."""
    if importlib.util.find_spec("vaelab.tooling.student") is None:
        pytest.skip("vaelab.tooling.student is not available")
    made = subprocess.run(
        [sys.executable, "-m", "vaelab.tooling.student", "--out", str(tmp_path), str(master)],
        capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    served = lab_server.root_dir / "student"
    served.mkdir(exist_ok=True)
    shutil.copy2(tmp_path / "student" / master.name, served / master.name)
    notebook = lab.open(f"student/{master.name}")
    try:
        notebook.run_all(RUN_ALL_TIMEOUT_S)
        notebook.screenshot_notebook(e2e_out / f"student_{master.stem}.png")
        errors = [p for p in notebook.problems()
                  if p["kind"] == "error" and "raises-exception" not in p["tags"]]
        shown = notebook.shown_errors()
    finally:
        notebook.close()
    exercise = first_exercise(master)
    assert errors, f"the student version of {master.name} ran without an error: solution leaked?"
    first = errors[0]
    assert first["ename"] == "NotImplementedError", first
    assert first["evalue"].startswith(f"Exercise {exercise}"), first
    assert any("NotImplementedError" in text for text in shown), shown
