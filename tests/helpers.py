"""Small synthetic data, models and helpers shared by the tests."""

from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from vaelab.decoder_likelihoods import Bernoulli
from vaelab.tooling.bench import StudentConvVAE
from vaelab.tooling.student import find_exercises
from vaelab.vae import VAE

D = 16


def synthetic_images(n: int = 256, seed: int = 0) -> torch.Tensor:
    """uint8 (n, D): two 'digits' (left half bright, right half bright) with grey noise."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.zeros(2, D)
    proto[0, : D // 2], proto[1, D // 2 :] = 220, 220
    which = torch.randint(0, 2, (n,), generator=gen)
    noise = torch.randint(0, 35, (n, D), generator=gen)
    return (proto[which] + noise).clamp(0, 255).to(torch.uint8)


def binary(n: int = 64, seed: int = 1) -> torch.Tensor:
    """Binary float images (n, D) drawn from synthetic_images."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=gen) * 255 < synthetic_images(n, seed)).float()


def small_model(seed: int = 0, **kwargs) -> VAE:
    torch.manual_seed(seed)
    return VAE(**{"latent_dim": 2, "hidden": (12,), "input_dim": D, **kwargs})


def ConvVAE(latent_dim: int = 2) -> nn.Module:  # noqa: N802 - reads as the class it builds
    """The bench's student-style convolutional VAE on this file's 4 x 4 images (D = 16)."""
    return StudentConvVAE(latent_dim=latent_dim, side=4)


def mnist_like(n: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 784): two blocky 'digits' (top half or bottom half bright) with grey noise,
    shaped like MNIST rows, so notebook 06's rules and notebook 04's MLP apply to them."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.zeros(2, 784)
    proto[0, :392], proto[1, 392:] = 230, 230
    which = torch.randint(0, 2, (n,), generator=gen)
    noise = torch.randint(0, 25, (n, 784), generator=gen)
    return (proto[which] + noise).clamp(0, 255).to(torch.uint8)


class TinyVAE(nn.Module):
    """A student's notebook 06 model in miniature: its own small MLPs, a Bernoulli likelihood,
    latent_dim; 784 pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.likelihood, self.latent_dim = Bernoulli(), 2
        self.enc = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 4))
        self.dec = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)


def calls_into(names: set[str], module: str) -> bool:
    """Whether any of ``names`` is in ``module`` or below (``vaelab.exercises`` matches
    ``vaelab.exercises.mle.check_gaussian_mle``)."""
    # A str would be read letter by letter and match a one-letter module: refuse it.
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a set of qualified names (str), as called_names gives, "
                        f"got {names!r}")
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a dotted module name (str), got {module!r}")
    return any(n == module or n.startswith(module + ".") for n in names)


class LinearVAE(nn.Module):
    """The smallest model a student could write outside the package: one Linear layer each way
    on D pixels; ``enc_out`` / ``dec_out`` let a test give it the wrong output widths."""

    def __init__(self, likelihood=None, latent_dim: int = 2, enc_out: int | None = None,
                 dec_out: int | None = None) -> None:
        super().__init__()
        self.likelihood = likelihood or Bernoulli()
        self.enc = nn.Linear(D, enc_out or 2 * latent_dim)
        self.dec = nn.Linear(latent_dim, dec_out or self.likelihood.params_per_dim * D)

    def encode(self, x):
        return self.enc(x).chunk(2, dim=1)

    def decode(self, z):
        return self.dec(z)


def solution_lines(master) -> set[str]:
    """Every non-blank line inside a solution region of ``master`` (markers excluded)."""
    nb = nbformat.read(master, as_version=4)
    lines = set()
    for exercise in find_exercises(nb, master.name):
        source = nb.cells[exercise.cell_index].source.split("\n")
        for region in exercise.regions:
            lines |= {line.strip() for line in source[region.begin + 1 : region.end]}
    return lines - {""}


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# The notebook whose solution cells answer each exercise, by the exercise's first digit.
MASTERS = {"1": NOTEBOOKS / "01_gaussian_mle.ipynb", "2": NOTEBOOKS / "02_poisson_exercise.ipynb",
           "3": NOTEBOOKS / "03_elbo_derivations.ipynb", "4": NOTEBOOKS / "04_mnist_vae.ipynb",
           "5": NOTEBOOKS / "05_vae_questions.ipynb"}


def leaked_solution(text: str, master) -> list[str]:
    """The solution lines of ``master`` (those of 20 characters or more: a bare
    ``opt.zero_grad()`` is a word a hint may use) that appear in ``text``."""
    return sorted(line for line in solution_lines(master) if len(line) >= 20 and line in text)


def diagnosis(check: Callable[..., None], *args: object, general: str):
    """The feedback ``check(*args)`` gives a wrong answer, asserted to be a diagnosis: a
    hint of its own (not the exercise's ``general`` one), without a line of the solution."""
    from vaelab.exercises.core import ExerciseError

    with pytest.raises(ExerciseError) as info:
        check(*args)
    error = info.value
    assert error.hint and error.hint != general, str(error)
    assert not leaked_solution(str(error), MASTERS[error.exercise[0]]), str(error)
    return error


def _same_input(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a.detach(), b.detach())
    if isinstance(a, np.ndarray | float | int):
        return bool(np.array_equal(a, b))
    return True  # another object (a log-likelihood): the tensors tell the cases apart


def answering(table: Sequence[tuple[tuple, object]]) -> Callable[..., object]:
    """A student's function that makes one mistake: ``table`` holds, per set of inputs a
    check passes, what that mistake returns on them. Called with inputs equal to one row's
    (tensors and arrays by value), it returns that row's answer (a copy)."""
    def student(*args: object) -> object:
        for inputs, answer in table:
            if all(_same_input(a, b) for a, b in zip(inputs, args, strict=True)):
                return answer.clone() if isinstance(answer, torch.Tensor) else answer
        raise AssertionError("the check passed inputs it did not draw from the fixed seed")
    return student


SEED = 20251205  # a check's inputs, fixed so that a test can tabulate a mistake's answers


def assert_mistake_named(monkeypatch, module, check: Callable[..., None], mistake,
                         cases: Callable[[int], Sequence], inputs: Callable[[object], tuple],
                         general: str) -> None:
    """A student's function making ``mistake`` (its answers on the inputs ``module`` draws
    from ``SEED``: ``cases(SEED)``, each passed as ``inputs(case)``) gets that mistake's
    own feedback from ``check``, not the ``general`` hint."""
    monkeypatch.setattr(module, "fresh_seed", lambda: SEED)
    student = answering([(inputs(c), mistake.answer(c)) for c in cases(SEED)])
    error = diagnosis(check, student, general=general)
    assert error.problem.startswith(mistake.problem) and error.hint == mistake.hint, str(error)


def assert_devices_named(check: Callable[..., None], on_meta: Callable[..., object],
                         mixing: Callable[..., object], first_input: str = "mu") -> None:
    """A right answer returned on another device (the meta device stands in for a GPU on a
    machine without one) and a function that mixes devices each get feedback naming them."""
    from vaelab.exercises.core import ExerciseError

    with pytest.raises(ExerciseError, match="your function is a tensor on the meta device"):
        check(on_meta)
    with pytest.raises(ExerciseError, match="mixes tensors on different devices") as info:
        check(mixing)
    assert f"{first_input} on cpu" in info.value.problem, str(info.value)
    assert "device=mu.device" in info.value.hint, str(info.value)


def global_state() -> dict[str, object]:
    """What a notebook's later cells rely on and a check must leave as it found it: the
    random generators (Python's, NumPy's global one, torch's), torch's default dtype,
    thread count and grad mode; comparable with ==."""
    import pickle
    import random

    import numpy as np

    return {"python": random.getstate(), "numpy": pickle.dumps(np.random.get_state()),  # noqa: NPY002
            "torch": torch.get_rng_state().tolist(), "dtype": torch.get_default_dtype(),
            "threads": torch.get_num_threads(), "grad": torch.is_grad_enabled()}
