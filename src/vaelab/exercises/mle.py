"""Checks for the maximum-likelihood exercises of notebooks 01 and 02.

Notebook 01 (Gaussian, newborn weights): 1.1 write the log-likelihood,
1.2 compute the MLE. Notebook 02 (Poisson, car counts): 2.1 a model with a
sampler, 2.2 its parameter, 2.3 the MLE of lambda, 2.4 ln p(x | lambda_MLE).
Each check compares with vaelab.mle and recognises the common mistakes.
The functions (1.1, the sampler of 2.1) are called on inputs drawn when the check
runs; the values (1.2, 2.3, 2.4) must be right to 6 significant digits, so a
rounded number typed in does not pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from vaelab.distributions import LOG_2PI
from vaelab.exercises.core import (
    Mistake,
    call_student,
    diagnose,
    fail,
    fresh_seed,
    grid,
    number_answer,
    passed,
    reveal,
    show,
)
from vaelab.mle import (
    gaussian_log_likelihood,
    gaussian_mle,
    poisson_log_likelihood,
    poisson_mle,
)
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G
from vaelab.validation import as_counts, as_finite_array


def _close(a: float, b: float, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    return bool(np.isclose(a, b, rtol=rtol, atol=atol))


# A near miss: right to three or four digits but not to the six the checks ask for.
_NEAR_HINT = ("Close, but the check wants 6 significant digits: compute the value from x "
              "in code instead of typing a rounded number.")


def _near(a: float, b: float) -> bool:
    return _close(a, b, rtol=1e-3, atol=0.0)


# ----------------------------------------------------------------------------- notebook 01


class GaussianCase(NamedTuple):
    """Inputs of one call of the student's log-likelihood, and the package's answer."""

    x: np.ndarray
    mu: float
    sigma: float
    want: float


def _gaussian_cases(seed: int) -> list[GaussianCase]:
    """Three data sets of different sizes and scales (values print exactly); sigma is
    never 1, where a variance and a standard deviation agree."""
    rng = np.random.default_rng(seed)
    raw = [
        (grid(rng, -3.0, 3.0, 3), float(grid(rng, -2.0, 2.0)),
         float(grid(rng, 0.5, 3.0, avoid=[1.0]))),
        (grid(rng, -3.0, 3.0, int(rng.integers(4, 7))), float(grid(rng, -2.0, 2.0)),
         float(grid(rng, 0.5, 3.0, avoid=[1.0]))),
        (100.0 * rng.integers(20, 50, int(rng.integers(7, 11))), 100.0 * int(rng.integers(30, 40)),
         100.0 * int(rng.integers(3, 12))),  # grams, like the newborn weights
    ]
    return [GaussianCase(x, mu, sigma, gaussian_log_likelihood(x, mu, sigma))
            for x, mu, sigma in raw]


def _shape(value: object) -> tuple[int, ...]:
    """The shape of an array, tensor or list; () for anything else."""
    if isinstance(value, str | bytes):
        return ()
    try:
        return tuple(np.shape(value))
    except (RuntimeError, TypeError, ValueError):  # a list of tensors that require grad
        return ()


def _gaussian_terms(c: GaussianCase) -> tuple[float, float, float]:
    """The log-likelihood's three sums: -n/2 ln(2 pi), -n ln sigma and
    -sum_i (x_i - mu)^2 / (2 sigma^2)."""
    n = c.x.size
    return (-0.5 * n * LOG_2PI, -n * float(np.log(c.sigma)),
            -float(np.sum((c.x - c.mu) ** 2)) / (2.0 * c.sigma**2))


def _gaussian_with(constant: float = 1.0, log_sigma: float = 1.0, square: float = 1.0
                   ) -> Callable[[GaussianCase], float]:
    """The log-likelihood with each of its three sums multiplied by a factor: a flipped
    sign (-1), a missing or extra 1/2 (2, 0.5), a base-10 log (1 / ln 10)."""
    def answer(c: GaussianCase) -> float:
        a, b, q = _gaussian_terms(c)
        return constant * a + log_sigma * b + square * q
    return answer


_LOG10 = 1.0 / np.log(10.0)
_BASE_10_HINT = ("np.log10 is the base-10 logarithm; log-likelihoods use the natural log, np.log "
                 "(their unit is the nat).")

LOG_LIKELIHOOD_MISTAKES = [
    Mistake("your log-likelihood has the wrong sign: ",
            "Wrong sign: a log-density of these points is negative, "
            "ln N = -1/2 ln(2 pi sigma^2) - (x - mu)^2 / (2 sigma^2).", lambda c: -c.want),
    Mistake("the squared-distance term has the wrong sign: ",
            "The density is highest at mu and falls away from it: the term in (x - mu)^2 lowers "
            "the log-density, so it is subtracted.", _gaussian_with(square=-1.0)),
    Mistake("the ln sigma term has the wrong sign: ",
            "A wider density is lower everywhere: the log-density falls as sigma grows, so "
            "ln sigma is subtracted.", _gaussian_with(log_sigma=-1.0)),
    Mistake("the ln(2 pi) term has the wrong sign: ",
            "The factor 1/sqrt(2 pi) is below 1, so its log is negative: 1/2 ln(2 pi) is "
            "subtracted.", _gaussian_with(constant=-1.0)),
    Mistake("the normalising terms have the wrong sign: ",
            "The density divides by sqrt(2 pi sigma^2), so its log subtracts "
            "1/2 ln(2 pi sigma^2) for each point.", _gaussian_with(constant=-1.0, log_sigma=-1.0)),
    Mistake("a base-10 logarithm in the normalising terms: ", _BASE_10_HINT,
            _gaussian_with(constant=_LOG10)),
    Mistake("a base-10 logarithm in the normalising terms: ", _BASE_10_HINT,
            _gaussian_with(log_sigma=_LOG10)),
    Mistake("a base-10 logarithm in the normalising terms: ", _BASE_10_HINT,
            _gaussian_with(constant=_LOG10, log_sigma=_LOG10)),
    Mistake("that is a base-10 logarithm of the likelihood: ", _BASE_10_HINT,
            lambda c: c.want * _LOG10),
    Mistake("the ln(2 pi) term is missing: ",
            "You dropped the constant -n/2 ln(2 pi): it does not move the maximum, but the "
            "log-likelihood's value needs it.", _gaussian_with(constant=0.0)),
    Mistake("the ln(2 pi) term is twice what it should be: ",
            "Each point's log-density has -1/2 ln(2 pi): the 1/2 is missing.",
            _gaussian_with(constant=2.0)),
    Mistake("sigma was used as the variance: ",
            "sigma is the standard deviation, not the variance: the density uses sigma^2 "
            "(in -ln sigma and in (x - mu)^2 / (2 sigma^2)).",
            lambda c: gaussian_log_likelihood(c.x, c.mu, np.sqrt(c.sigma))),
    Mistake("the ln sigma term is missing: ",
            "The normalising term -n ln sigma is missing (from -1/2 ln(2 pi sigma^2) for "
            "each point).", _gaussian_with(log_sigma=0.0)),
    Mistake("the ln sigma term is twice what it should be: ",
            "-1/2 ln(sigma^2) is -ln sigma: the 1/2 in front of ln(sigma^2) is missing.",
            _gaussian_with(log_sigma=2.0)),
    Mistake("the squared-distance term is twice what it should be: ",
            "(x - mu)^2 is divided by 2 sigma^2: the factor 2 (the 1/2 in front) is missing.",
            _gaussian_with(square=2.0)),
    Mistake("the squared distance is divided by the wrong power of sigma: ",
            "(x - mu)^2 is divided by 2 sigma^2, twice the variance, not by 2 sigma.",
            lambda c: _gaussian_with(square=c.sigma)(c)),
    Mistake("the normalising terms count once instead of once per observation: ",
            "Every point's log-density has its own -1/2 ln(2 pi) - ln sigma: the sum over n "
            "points has n of each.",
            lambda c: _gaussian_with(constant=1.0 / c.x.size, log_sigma=1.0 / c.x.size)(c)),
    Mistake("you averaged: ", "You averaged over the points; the log-likelihood is their sum.",
            lambda c: c.want / c.x.size),
    Mistake("that is the likelihood itself: ",
            "That is the likelihood itself; take the log (a sum of log-densities).",
            lambda c: float(np.exp(c.want))),
]
LOG_LIKELIHOOD_HINT = ("Write ln N(x | mu, sigma) = -1/2 ln(2 pi) - ln sigma - (x - mu)^2 / "
                       "(2 sigma^2) and sum it over the observations.")


def check_gaussian_log_likelihood(func: Callable[[np.ndarray, float, float], float]) -> None:
    """Exercise 1.1: ``func(x, mu, sigma)`` must return sum_i ln N(x_i | mu, sigma)."""
    ex = "1.1"
    results = []
    for case in _gaussian_cases(fresh_seed()):
        raw = call_student(ex, func, case.x.copy(), case.mu, case.sigma,
                           names=("x", "mu", "sigma"))
        n = case.x.size
        if n > 1 and _shape(raw) == (n,):
            fail(ex, f"for {n} observations your function returned {n} numbers.",
                 "The log-likelihood of IID data is the SUM of the per-point log-densities.")
        results.append((number_answer(raw, ex, "the log-likelihood"), case))
    for got, case in results:
        if _close(got, case.want, atol=0.0):
            continue
        where = (f"at x = {show(case.x)}, mu = {case.mu:g}, sigma = {case.sigma:g} your "
                 f"function returned {got:.6f}" + reveal(f"expected {case.want:.6f}"))
        diagnose(ex, got, case, LOG_LIKELIHOOD_MISTAKES,
                 lambda a, b: _close(a, b, atol=0.0), where, also=results)
        fail(ex, where, LOG_LIKELIHOOD_HINT)
    passed(ex, "Your log-likelihood matches vaelab.mle.gaussian_log_likelihood.")


def check_gaussian_mle(
    mu_hat: float, sigma_hat: float, x: Sequence[float] | np.ndarray = NEWBORN_WEIGHTS_G
) -> None:
    """Exercise 1.2: the MLE (mean, biased std) of the newborn weights (or of ``x``)."""
    ex = "1.2"
    data = as_finite_array(x, "x")
    mu = number_answer(mu_hat, ex, "mu_hat")
    sigma = number_answer(sigma_hat, ex, "sigma_hat")
    want = gaussian_mle(data)
    if not _close(mu, want.mu):
        fail(ex, f"mu_hat = {mu:.4f} is not the maximum-likelihood mean.",
             _NEAR_HINT if _near(mu, want.mu) else
             "Setting d/dmu of the log-likelihood to zero gives the sample mean.")
    if _close(sigma, want.sigma):
        passed(ex, "mu_hat and sigma_hat maximise the likelihood.")
        return
    problem = f"sigma_hat = {sigma:.4f} is not the maximum-likelihood sigma."
    if _near(sigma, want.sigma):
        fail(ex, problem, _NEAR_HINT)
    unbiased = float(np.std(data, ddof=1))
    if _close(sigma, unbiased):
        fail(ex, problem, "Dividing by n - 1 gives the unbiased variance's root, not the MLE: "
             "the maximum-likelihood sigma^2 divides the sum of squared deviations by n.")
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
    rng = np.random.default_rng(fresh_seed())
    lams = [float(grid(rng, low, high)) for low, high in ((2.0, 5.0), (0.5, 1.5), (5.0, 8.0))]
    for lam, seed in zip(lams, rng.integers(0, 2**31, 3), strict=True):
        n = 20_000
        draws = np.asarray(call_student(ex, sample_cars, lam, n, np.random.default_rng(seed)))
        if draws.shape != (n,):
            fail(ex, f"sample_cars({lam:.3f}, {n}, rng) returned shape {draws.shape}, "
                 f"expected ({n},).", "Return one count per draw: an array of shape (n,).")
        if not np.all(np.isfinite(draws)) or np.any(draws != np.round(draws)) or np.any(draws < 0):
            fail(ex, f"sample_cars({lam:.3f}, ...) returned values that are not counts "
                 "(negative or not whole numbers).",
                 "A normal model for counts gives fractions and negative cars: sample a Poisson.")
        again = np.asarray(call_student(ex, sample_cars, lam, n, np.random.default_rng(seed)))
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


def check_car_parameter(parameters: Iterable[str]) -> None:
    """Exercise 2.2: theta = {lambda}, given as a set of names (a list or tuple passes too)."""
    ex = "2.2"
    if isinstance(parameters, str | bytes):
        fail(ex, "theta is a single string, not a set of names.",
             "The exercise asks for the set of the model's parameter names: put each name, as "
             "a string, inside curly braces, as {'mu', 'sigma'} is notebook 01's set.")
    try:
        names = list(parameters)
    except TypeError:
        fail(ex, f"theta should be a set of names, got {type(parameters).__name__}.",
             "For example {'mu', 'sigma'} for a normal model.")
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
    lam = number_answer(lam_hat, ex, "lam_hat")
    want = poisson_mle(counts)
    if _close(lam, want):
        passed(ex, "lambda_MLE = sum(x) / n, the mean count.")
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


class PoissonCase(NamedTuple):
    """The counts of exercise 2.4, their MLE and the package's ln p(x | lambda_MLE)."""

    x: np.ndarray
    lam: float
    want: float


def _poisson_with(rate: float = 1.0, count: float = 1.0, factorial: float = 1.0,
                  shift: int = 1) -> Callable[[PoissonCase], float]:
    """ln p(x | lambda) with its three sums, sum x_i ln lambda, -n lambda and -sum ln x_i!,
    multiplied by ``count``, ``rate`` and ``factorial`` (a flipped sign is -1, a base-10
    log 1 / ln 10), and ln x! computed as gammaln(x + ``shift``)."""
    def answer(c: PoissonCase) -> float:
        return float(count * np.sum(c.x * np.log(c.lam)) - rate * c.x.size * c.lam
                     - factorial * np.sum(gammaln(c.x + shift)))
    return answer


POISSON_LOG_LIKELIHOOD_MISTAKES = [
    Mistake("the -ln(x_i!) term is missing: ",
            "The -ln(x_i!) term is missing (scipy.special.gammaln(x + 1)): it does not move the "
            "MLE, but the log-likelihood's value needs it.", _poisson_with(factorial=0.0)),
    Mistake("ln(x_i!) is off by one: ",
            "gammaln(n) is ln((n - 1)!), the Gamma function being shifted by one from the "
            "factorial: ln(x_i!) is gammaln of x_i + 1.", _poisson_with(shift=0)),
    Mistake("your log-likelihood has the wrong sign: ",
            "Wrong sign: a probability is at most 1, so its log is <= 0.", lambda c: -c.want),
    Mistake("the lambda term has the wrong sign: ",
            "The Poisson pmf has the factor e^(-lambda), so each count's log-probability "
            "subtracts lambda.", _poisson_with(rate=-1.0)),
    Mistake("the ln(x_i!) term has the wrong sign: ",
            "x_i! divides in the pmf lambda^x e^(-lambda) / x!, so its log is subtracted.",
            _poisson_with(factorial=-1.0)),
    Mistake("the x_i ln lambda term has the wrong sign: ",
            "lambda^x multiplies in the pmf lambda^x e^(-lambda) / x!, so x_i ln lambda is "
            "added.", _poisson_with(count=-1.0)),
    Mistake("-lambda counts once instead of once per observation: ",
            "Every count's pmf has its own factor e^(-lambda): the sum over n counts "
            "subtracts lambda n times.", lambda c: _poisson_with(rate=1.0 / c.x.size)(c)),
    Mistake("a base-10 logarithm in ln lambda: ", _BASE_10_HINT, _poisson_with(count=_LOG10)),
    Mistake("a base-10 logarithm in ln(x_i!): ", _BASE_10_HINT,
            _poisson_with(factorial=_LOG10)),
    Mistake("base-10 logarithms in ln lambda and ln(x_i!): ", _BASE_10_HINT,
            _poisson_with(count=_LOG10, factorial=_LOG10)),
    Mistake("that is a base-10 logarithm of the likelihood: ",
            "That is a base-10 logarithm; use the natural log (nats).", lambda c: c.want * _LOG10),
    Mistake("that is a normal model's log-likelihood: ",
            "That is a normal model's log-likelihood; counts follow a Poisson: "
            "sum_i (x_i ln lambda - lambda - ln x_i!).",
            lambda c: gaussian_log_likelihood(c.x, c.lam, float(np.std(c.x)))),
    Mistake("you averaged: ",
            "You averaged; the log-likelihood of IID data is the sum over points.",
            lambda c: c.want / c.x.size),
    Mistake("that is the likelihood itself: ",
            "That is the likelihood itself; take its natural log.",
            lambda c: float(np.exp(c.want))),
]
POISSON_LOG_LIKELIHOOD_HINT = ("Evaluate sum_i (x_i ln lambda - lambda - ln x_i!) at "
                               "lambda = mean(x).")


def check_poisson_log_likelihood(
    log_likelihood: float, x: Sequence[int] | np.ndarray = CAR_COUNTS
) -> None:
    """Exercise 2.4: ln p(x | lambda_MLE), to 6 significant digits."""
    ex = "2.4"
    counts = as_counts(x, "x")
    value = number_answer(log_likelihood, ex, "the log-likelihood")
    lam = poisson_mle(counts)
    case = PoissonCase(counts, lam, poisson_log_likelihood(counts, lam))
    if _close(value, case.want):
        passed(ex, "ln p(x | lambda_MLE), with the -ln x_i! term.")
        return
    problem = f"{value:.4f} is not ln p(x | lambda_MLE)."
    if _near(value, case.want):
        fail(ex, problem, _NEAR_HINT)
    diagnose(ex, value, case, POISSON_LOG_LIKELIHOOD_MISTAKES,
             lambda a, b: _close(a, b, rtol=1e-5, atol=1e-9), problem)
    fail(ex, problem, POISSON_LOG_LIKELIHOOD_HINT)
