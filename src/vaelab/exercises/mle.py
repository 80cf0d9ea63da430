"""Checks for the maximum-likelihood exercises of notebooks 01 and 02.

Notebook 01 (Gaussian, newborn weights): 1.1 write the log-likelihood,
1.2 compute the MLE. Notebook 02 (Poisson, car counts): 2.1 a model with a
sampler, 2.2 its parameter, 2.3 the MLE of lambda, 2.4 ln p(x | lambda_MLE).
Each check compares with vaelab.mle and recognises the common mistakes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from vaelab.distributions import LOG_2PI
from vaelab.exercises.core import call_student, fail, passed, reveal
from vaelab.mle import (
    gaussian_log_likelihood,
    gaussian_mle,
    poisson_log_likelihood,
    poisson_mle,
)
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G
from vaelab.validation import as_counts, as_finite_array


def _number(value: object, exercise: str, what: str) -> float:
    """The answer as a finite float, or the feedback that it is not one."""
    arr = np.asarray(value)
    if arr.size != 1:
        fail(exercise, f"{what} should be a single number, got an array of shape {arr.shape}.",
             "Sum (or average) over the observations to get one number.")
    try:
        x = float(arr.reshape(()))
    except (TypeError, ValueError):
        fail(exercise, f"{what} should be a number, got {value!r}.",
             "Assign the result of your computation (a float), not a function or a string.")
    if not np.isfinite(x):
        fail(exercise, f"{what} is {x}, not a finite number.",
             "Check for a log of zero or of a negative number.")
    return x


def _close(a: float, b: float, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    return bool(np.isclose(a, b, rtol=rtol, atol=atol))


# A near miss: right to three or four digits but not to the six the checks ask for.
_NEAR_HINT = ("Close, but the check wants 6 significant digits: compute the value from x "
              "in code instead of typing a rounded number.")


def _near(a: float, b: float) -> bool:
    return _close(a, b, rtol=1e-3, atol=0.0)


# ----------------------------------------------------------------------------- notebook 01


def check_gaussian_log_likelihood(func: Callable[[np.ndarray, float, float], float]) -> None:
    """Exercise 1.1: ``func(x, mu, sigma)`` must return sum_i ln N(x_i | mu, sigma)."""
    ex = "1.1"
    cases = [
        (np.array(NEWBORN_WEIGHTS_G), 3500.0, 700.0),
        (np.array(NEWBORN_WEIGHTS_G), 3200.0, 1000.0),
        (np.array([1.0, -2.0, 0.5, 3.0]), 0.3, 1.7),
    ]
    for x, mu, sigma in cases:
        want = gaussian_log_likelihood(x, mu, sigma)
        raw = np.asarray(call_student(ex, func, x.copy(), mu, sigma))
        if raw.size == x.size and x.size > 1 and raw.ndim == 1:
            fail(ex, f"for {x.size} observations your function returned {x.size} numbers.",
                 "The log-likelihood of IID data is the SUM of the per-point log-densities.")
        got = _number(raw, ex, "the log-likelihood")
        if _close(got, want):
            continue
        n = x.size
        where = (f"at mu = {mu:g}, sigma = {sigma:g} your function returned {got:.6f}"
                 + reveal(f"expected {want:.6f}"))
        if _close(got, -want):
            fail(ex, where, "Wrong sign: a log-density of these points is negative, "
                 "ln N = -1/2 ln(2 pi sigma^2) - (x - mu)^2 / (2 sigma^2).")
        if _close(got, want + n * 0.5 * LOG_2PI):
            fail(ex, where, "You dropped the constant -n/2 ln(2 pi): it does not move the "
                 "maximum, but the log-likelihood's value needs it.")
        if _close(got, gaussian_log_likelihood(x, mu, np.sqrt(sigma))):
            fail(ex, where, "sigma is the standard deviation, not the variance: the density "
                 "uses sigma^2 (in -ln sigma and in (x - mu)^2 / (2 sigma^2)).")
        if _close(got, want + n * np.log(sigma)):
            fail(ex, where, "The normalising term -n ln sigma is missing "
                 "(from -1/2 ln(2 pi sigma^2) for each point).")
        if _close(got, want / n):
            fail(ex, where, "You averaged over the points; the log-likelihood is their sum.")
        if _close(got, float(np.exp(want)), rtol=1e-6, atol=1e-300):
            fail(ex, where, "That is the likelihood itself; take the log (a sum of log-densities).")
        fail(ex, where, "Write ln N(x | mu, sigma) = -1/2 ln(2 pi) - ln sigma - "
             "(x - mu)^2 / (2 sigma^2) and sum it over the observations.")
    passed(ex, "Your log-likelihood matches vaelab.mle.gaussian_log_likelihood.")


def check_gaussian_mle(
    mu_hat: float, sigma_hat: float, x: Sequence[float] | np.ndarray = NEWBORN_WEIGHTS_G
) -> None:
    """Exercise 1.2: the MLE (mean, biased std) of the newborn weights (or of ``x``)."""
    ex = "1.2"
    data = as_finite_array(x, "x")
    mu = _number(mu_hat, ex, "mu_hat")
    sigma = _number(sigma_hat, ex, "sigma_hat")
    want = gaussian_mle(data)
    if not _close(mu, want.mu):
        fail(ex, f"mu_hat = {mu:.4f} is not the maximum-likelihood mean.",
             _NEAR_HINT if _near(mu, want.mu) else
             "Setting d/dmu of the log-likelihood to zero gives the sample mean.")
    if _close(sigma, want.sigma):
        passed(ex, f"mu = {want.mu:.2f} g, sigma = {want.sigma:.2f} g.")
        return
    problem = f"sigma_hat = {sigma:.4f} is not the maximum-likelihood sigma."
    if _near(sigma, want.sigma):
        fail(ex, problem, _NEAR_HINT)
    unbiased = float(np.std(data, ddof=1))
    if _close(sigma, unbiased):
        fail(ex, problem, "Dividing by n - 1 gives the unbiased variance's root, not the MLE: "
             "the maximum-likelihood sigma divides by n (np.std(x, ddof=0)).")
    if _close(sigma, want.sigma**2) or _close(sigma, unbiased**2):
        fail(ex, problem, "That is a variance; sigma is the standard deviation "
             "(take the square root).")
    if sigma <= 0:
        fail(ex, problem, "A standard deviation is positive.")
    fail(ex, problem, "Setting d/dsigma to zero gives sigma^2 = (1/n) sum_i (x_i - mu)^2.")


# ----------------------------------------------------------------------------- notebook 02

_NORMAL_WORDS = re.compile(r"normal|gauss|\bn\s*\(|\\mathcal\{n\}", re.IGNORECASE)


def check_car_model(
    notation: str, sample_cars: Callable[[float, int, np.random.Generator], np.ndarray]
) -> None:
    """Exercise 2.1: the model in standard notation and a sampler ``sample_cars(lam, n, rng)``.

    The notation must name a Poisson with parameter lambda and say the counts are
    IID; the sampler must return n non-negative integer counts whose mean and
    variance are both close to lam, reproducibly from ``rng``.
    """
    ex = "2.1"
    if not isinstance(notation, str) or not notation.strip():
        fail(ex, f"notation should be a non-empty string, got {notation!r}.",
             "Write the model as text, for example 'x_i ~ Distribution(parameter), IID'.")
    text = notation.lower()
    if _NORMAL_WORDS.search(text) and "poisson" not in text:
        fail(ex, f"the model {notation!r} is a normal model.",
             "Counts are non-negative integers: a normal puts mass on -1.7 cars. "
             "Use a distribution over 0, 1, 2, ... whose mean equals its variance.")
    if "poisson" not in text:
        fail(ex, f"the model {notation!r} does not name the distribution of counts.",
             "Counts of events in a fixed interval: x_i ~ Poisson(lambda).")
    if not any(w in text for w in ("lambda", "λ", "lam")):
        fail(ex, f"the model {notation!r} does not name its parameter.",
             "Write the parameter: x_i ~ Poisson(lambda).")
    if not any(w in text for w in ("iid", "i.i.d", "independent")):
        fail(ex, f"the model {notation!r} does not say how the three counts relate.",
             "Say they are IID (independent and identically distributed): the joint is a product.")
    for lam in (8.0 / 3.0, 0.7, 6.0):
        n = 20_000
        draws = np.asarray(call_student(ex, sample_cars, lam, n, np.random.default_rng(1234)))
        if draws.shape != (n,):
            fail(ex, f"sample_cars({lam:.3f}, {n}, rng) returned shape {draws.shape}, "
                 f"expected ({n},).", "Return one count per draw: an array of shape (n,).")
        if not np.all(np.isfinite(draws)) or np.any(draws != np.round(draws)) or np.any(draws < 0):
            fail(ex, f"sample_cars({lam:.3f}, ...) returned values that are not counts "
                 "(negative or not whole numbers).",
                 "A normal model for counts gives fractions and negative cars: sample a Poisson.")
        again = np.asarray(call_student(ex, sample_cars, lam, n, np.random.default_rng(1234)))
        if not np.array_equal(draws, again):
            fail(ex, "the same seeded rng gave different samples.",
                 "Draw from the rng argument (rng.poisson), not from a global generator.")
        mean, var = float(draws.mean()), float(draws.var())
        if abs(mean - lam) > 5.0 * np.sqrt(lam / n):
            fail(ex, f"for lam = {lam:.3f} the samples' mean is {mean:.3f}.",
                 "lambda is the mean count of a Poisson.")
        if abs(var - lam) > 5.0 * np.sqrt((lam + 2.0 * lam**2) / n):
            fail(ex, f"for lam = {lam:.3f} the samples' variance is {var:.3f}, "
                 f"but their mean is {mean:.3f}.",
                 "A Poisson's variance equals its mean; a rounded normal with another spread "
                 "is not a Poisson.")
    passed(ex, "x_i ~ Poisson(lambda), IID, and your sampler draws from it.")


_ALIASES = {"λ": "lambda", "\\lambda": "lambda", "lam": "lambda", "rate": "lambda",
            "μ": "mu", "\\mu": "mu", "σ": "sigma", "\\sigma": "sigma"}


def check_car_parameter(parameters: str | Iterable[str]) -> None:
    """Exercise 2.2: theta = {lambda}, given as a set of names (or one name)."""
    ex = "2.2"
    names = [parameters] if isinstance(parameters, str) else list(parameters)
    if not all(isinstance(p, str) for p in names):
        fail(ex, f"give the parameters' names as strings, got {parameters!r}.",
             "For example {'mu', 'sigma'} for a normal model.")
    found = {_ALIASES.get(p.strip().lower(), p.strip().lower()) for p in names}
    if found == {"lambda"}:
        passed(ex, "theta = {lambda}: one number, both the mean and the variance of the counts.")
        return
    if found & {"mu", "sigma", "mean", "variance", "std"}:
        fail(ex, f"theta = {sorted(found)} are a normal model's parameters.",
             "A Poisson has ONE parameter, lambda, which is both its mean and its variance.")
    fail(ex, f"theta = {sorted(found)} is not the Poisson's parameter set.",
         "theta holds the names of the numbers inside Poisson(.) in your model, as strings.")


def check_poisson_mle(lam_hat: float, x: Sequence[int] | np.ndarray = CAR_COUNTS) -> None:
    """Exercise 2.3: the maximum-likelihood lambda (the mean count)."""
    ex = "2.3"
    counts = as_counts(x, "x")
    lam = _number(lam_hat, ex, "lam_hat")
    want = poisson_mle(counts)
    if _close(lam, want):
        passed(ex, f"lambda_MLE = {want:.4f} = sum(x) / n.")
        return
    problem = f"lam_hat = {lam:.6g} is not the maximum-likelihood lambda."
    if _near(lam, want):
        fail(ex, problem, _NEAR_HINT)
    variances = (float(np.var(counts)), float(np.var(counts, ddof=1)))
    if any(_close(lam, v) for v in variances):
        fail(ex, problem, "That is a variance; setting d/dlambda [sum_i x_i ln lambda - n lambda] "
             "= sum_i x_i / lambda - n to zero gives the MEAN.")
    if lam < 0:
        fail(ex, problem, "Wrong sign: lambda is a rate, positive; check the sign of the "
             "derivative sum_i x_i / lambda - n.")
    if _close(lam, float(counts.sum())):
        fail(ex, problem, "You summed the counts; divide by the number of observations n.")
    if _close(lam, float(np.median(counts))):
        fail(ex, problem, "That is the median; the Poisson MLE is the mean.")
    fail(ex, problem, "Set the derivative of the log-likelihood to zero: "
         "sum_i x_i / lambda - n = 0.")


def check_poisson_log_likelihood(
    log_likelihood: float, x: Sequence[int] | np.ndarray = CAR_COUNTS
) -> None:
    """Exercise 2.4: ln p(x | lambda_MLE), to 4 decimals."""
    ex = "2.4"
    counts = as_counts(x, "x")
    value = _number(log_likelihood, ex, "the log-likelihood")
    lam = poisson_mle(counts)
    want = poisson_log_likelihood(counts, lam)
    if _close(value, want, rtol=0.0, atol=1e-4):
        passed(ex, f"ln p(x | lambda_MLE) = {want:.4f}.")
        return
    problem = f"{value:.4f} is not ln p(x | lambda_MLE)."
    if _close(value, want, rtol=0.0, atol=1e-2):
        fail(ex, problem, "Close: the check wants 4 decimals; compute it in code from "
             "lam_hat rather than typing a rounded number.")
    no_factorial = float(np.sum(counts * np.log(lam) - lam))
    sd = float(np.std(counts))
    if _close(value, no_factorial, rtol=0.0, atol=1e-4):
        fail(ex, problem, "The -ln(x_i!) term is missing (scipy.special.gammaln(x + 1)): it does "
             "not move the MLE, but the log-likelihood's value needs it.")
    if _close(value, -want, rtol=0.0, atol=1e-4):
        fail(ex, problem, "Wrong sign: a probability is at most 1, so its log is <= 0.")
    if sd > 0 and _close(value, gaussian_log_likelihood(counts, lam, sd), rtol=0.0, atol=1e-4):
        fail(ex, problem, "That is a normal model's log-likelihood; counts follow a Poisson: "
             "sum_i (x_i ln lambda - lambda - ln x_i!).")
    if _close(value, want / counts.size, rtol=0.0, atol=1e-4):
        fail(ex, problem, "You averaged; the log-likelihood of IID data is the sum over points.")
    if _close(value, want / np.log(10.0), rtol=0.0, atol=1e-4):
        fail(ex, problem, "That is a base-10 logarithm; use the natural log (nats).")
    if _close(value, float(np.exp(want)), rtol=1e-3, atol=0.0):
        fail(ex, problem, "That is the likelihood itself; take its natural log.")
    fail(ex, problem, "Evaluate sum_i (x_i ln lambda - lambda - ln x_i!) at lambda = mean(x).")
