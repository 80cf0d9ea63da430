"""Checks for notebooks 01 and 02: right answers pass, each known mistake gets its hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_mistake_named, diagnosis, global_state
from scipy import special, stats

from vaelab.exercises import mle
from vaelab.exercises.core import GRADING_ENV, ExerciseError
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G

LOG_2PI = np.log(2 * np.pi)


def right_loglik(x, mu, sigma):
    return float(np.sum(-0.5 * LOG_2PI - np.log(sigma) - (x - mu) ** 2 / (2 * sigma**2)))


# The answers a student could paste to pass: no feedback may show them (in either mode).
ANSWERS = {
    "1.2": ["700.55", "700.554"],
    "2.2": ["'lambda'", '"lambda"'],
    "2.3": ["2.6667", "2.66667", "8/3", "8 / 3"],
    "2.4": ["-5.1232", "-5.12324"],
}


def rejects(check, *args, hint: str) -> str:
    with pytest.raises(ExerciseError) as info:
        check(*args)
    text = str(info.value)
    assert hint in text, text
    assert "Hint:" in text
    # The student's own value may be echoed (a sigma of -700.554 is not the answer).
    echoed = " ".join(f"{a:.4f} {a:.6g} {a}" for a in args if isinstance(a, float | int))
    for answer in ANSWERS.get(info.value.exercise, []):
        assert answer not in text or answer in echoed, f"feedback shows {answer}: {text}"
    return text


@pytest.fixture(params=["practice", "grading"], autouse=True)
def mode(request, monkeypatch):
    """Every test runs in practice mode and as the graders run it (VAELAB_GRADING=1)."""
    if request.param == "grading":
        monkeypatch.setenv(GRADING_ENV, "1")
    else:
        monkeypatch.delenv(GRADING_ENV, raising=False)
    return request.param


# ----------------------------------------------------------------------------- 1.1


def test_1_1_accepts_the_log_likelihood(capsys) -> None:
    mle.check_gaussian_log_likelihood(right_loglik)
    mle.check_gaussian_log_likelihood(lambda x, m, s: stats.norm.logpdf(x, m, s).sum())
    assert "Exercise 1.1: correct." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda x, m, s: -right_loglik(x, m, s), "Wrong sign"),
        (lambda x, m, s: right_loglik(x, m, s) + 0.5 * len(x) * LOG_2PI, "-n/2 ln(2 pi)"),
        (lambda x, m, s: right_loglik(x, m, np.sqrt(s)), "not the variance"),
        (lambda x, m, s: right_loglik(x, m, s) + len(x) * np.log(s), "-n ln sigma"),
        (lambda x, m, s: right_loglik(x, m, s) / len(x), "averaged"),
        (lambda x, m, s: stats.norm.logpdf(x, m, s), "SUM"),
        (lambda x, m, s: np.exp(right_loglik(x, m, s)), "likelihood itself"),
        (lambda x, m, s: right_loglik(x, m, s) + 1.0, "Write ln N"),
        (lambda x, m, s: np.nan, "finite"),
    ],
    ids=["sign", "constant", "variance", "log-sigma", "mean", "per-point", "exp", "other", "nan"],
)
def test_1_1_rejects_mistakes(wrong, hint: str, mode) -> None:
    text = rejects(mle.check_gaussian_log_likelihood, wrong, hint=hint)
    # The expected value on the check's inputs only in practice mode.
    if mode == "grading":
        assert "expected" not in text, text


def _loglik(x, m, s, *, square=-0.5, log_sigma=-1.0, constant=-0.5, log=np.log):
    """A student's log-likelihood with the given coefficients and logarithm."""
    return float(np.sum(constant * log(2 * np.pi) + log_sigma * log(s)
                        + square * ((x - m) / s) ** 2))


# Issue 25: each used to get the general hint ("Write ln N(x | mu, sigma) = ...").
@pytest.mark.parametrize(("wrong", "problem", "hint"), [
    (lambda x, m, s: _loglik(x, m, s, square=0.5), "squared-distance term has the wrong sign",
     "so it is subtracted"),
    (lambda x, m, s: _loglik(x, m, s, log_sigma=1.0), "ln sigma term has the wrong sign",
     "ln sigma is subtracted"),
    (lambda x, m, s: _loglik(x, m, s, constant=0.5), "ln(2 pi) term has the wrong sign",
     "1/2 ln(2 pi) is subtracted"),
    (lambda x, m, s: float(np.sum(0.5 * np.log(2 * np.pi * s**2) - (x - m) ** 2 / (2 * s**2))),
     "normalising terms have the wrong sign", "subtracts 1/2 ln(2 pi sigma^2)"),
    (lambda x, m, s: _loglik(x, m, s, log=np.log10), "base-10 logarithm in the normalising terms",
     "np.log10"),
    (lambda x, m, s: float(np.sum(-0.5 * np.log(2 * np.pi) - np.log10(s) - (x - m) ** 2
                                  / (2 * s**2))), "base-10 logarithm", "natural log"),
    (lambda x, m, s: float(np.sum(-0.5 * np.log10(2 * np.pi) - np.log(s) - (x - m) ** 2
                                  / (2 * s**2))), "base-10 logarithm", "natural log"),
    (lambda x, m, s: float(np.sum(np.log10(stats.norm.pdf(x, m, s)))),
     "base-10 logarithm of the likelihood", "np.log10"),
    (lambda x, m, s: _loglik(x, m, s, constant=-1.0), "ln(2 pi) term is twice",
     "the 1/2 is missing"),
    (lambda x, m, s: float(np.sum(-0.5 * np.log(2 * np.pi) - np.log(s**2)
                                  - (x - m) ** 2 / (2 * s**2))), "ln sigma term is twice",
     "1/2 in front of ln(sigma^2)"),
    (lambda x, m, s: _loglik(x, m, s, square=-1.0), "squared-distance term is twice",
     "divided by 2 sigma^2"),
    (lambda x, m, s: float(np.sum(-0.5 * np.log(2 * np.pi) - np.log(s) - (x - m) ** 2 / (2 * s))),
     "wrong power of sigma", "not by 2 sigma"),
    (lambda x, m, s: float(-0.5 * np.log(2 * np.pi) - np.log(s)
                           - np.sum((x - m) ** 2) / (2 * s**2)),
     "count once instead of once per observation", "n of each"),
], ids=["square-sign", "log-sigma-sign", "2pi-sign", "normalising-sign", "log10-both",
        "log10-sigma", "log10-2pi", "log10-density", "2pi-no-half", "ln-sigma-squared",
        "square-no-half", "over-sigma", "constants-once"])
def test_1_1_names_each_mistake(wrong, problem: str, hint: str) -> None:
    error = diagnosis(mle.check_gaussian_log_likelihood, wrong,
                      general=mle.LOG_LIKELIHOOD_HINT)
    assert problem in error.problem and hint in error.hint, str(error)


def _short(mistake) -> str:
    return mistake.problem.strip(": ")[:50]


# Every mistake the check knows, made by a student's function: its own feedback.
@pytest.mark.parametrize("mistake", mle.LOG_LIKELIHOOD_MISTAKES, ids=_short)
def test_1_1_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch) -> None:
    assert_mistake_named(monkeypatch, mle, mle.check_gaussian_log_likelihood, mistake,
                         mle._gaussian_cases, lambda c: (c.x, c.mu, c.sigma),
                         mle.LOG_LIKELIHOOD_HINT)


def test_1_1_accepts_a_torch_answer(capsys) -> None:
    mle.check_gaussian_log_likelihood(
        lambda x, m, s: torch.tensor(right_loglik(x, m, s), requires_grad=True))
    assert "Exercise 1.1: correct." in capsys.readouterr().out


# ----------------------------------------------------------------------------- 1.2


def test_1_2_accepts_the_mle(capsys) -> None:
    mle.check_gaussian_mle(np.mean(NEWBORN_WEIGHTS_G), np.std(NEWBORN_WEIGHTS_G))
    mle.check_gaussian_mle(3500, 700.554066435989)
    assert "Exercise 1.2: correct." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mu", "sigma", "hint"),
    [
        (3500.0, float(np.std(NEWBORN_WEIGHTS_G, ddof=1)), "n - 1"),
        (3500.0, float(np.var(NEWBORN_WEIGHTS_G)), "variance"),
        (3500.0, float(np.var(NEWBORN_WEIGHTS_G, ddof=1)), "variance"),
        (3400.0, 700.55406, "sample mean"),
        (3500.0, -700.55406, "positive"),
        (3500.0, 650.0, "sigma^2 = (1/n)"),
        (3500.0, [700.0, 1.0], "single number"),
    ],
)
def test_1_2_rejects_mistakes(mu, sigma, hint: str) -> None:
    rejects(mle.check_gaussian_mle, mu, sigma, hint=hint)


MU, SIGMA = float(np.mean(NEWBORN_WEIGHTS_G)), float(np.std(NEWBORN_WEIGHTS_G))


# Issue 24: a requires-grad tensor in a list raised "Can't call numpy() on Tensor that
# requires grad"; strings passed.
@pytest.mark.parametrize(("mu", "sigma"), [
    ([torch.tensor(MU, requires_grad=True)], SIGMA),
    (torch.tensor(MU, dtype=torch.float64, requires_grad=True),
     (torch.tensor([SIGMA], dtype=torch.float64, requires_grad=True),)),
    (np.float64(MU), np.array([SIGMA])),
])
def test_1_2_accepts_any_numeric_form(mu, sigma, capsys) -> None:
    mle.check_gaussian_mle(mu, sigma)
    assert "Exercise 1.2: correct." in capsys.readouterr().out


@pytest.mark.parametrize(("mu", "sigma", "hint"), [
    (str(MU), SIGMA, "without quotes"), (MU, f"{SIGMA:.6f}", "without quotes"),
    (MU, True, "True and False are not counts"),
])
def test_1_2_refuses_strings_and_bools(mu, sigma, hint: str) -> None:
    rejects(mle.check_gaussian_mle, mu, sigma, hint=hint)


@pytest.mark.parametrize(("mu", "sigma"), [
    (MU, SIGMA), (MU * (1 + 5e-7), SIGMA), (MU, SIGMA * (1 - 5e-7)),
    (float(np.float32(MU)), float(np.float32(SIGMA))), (MU, 700.5541),
])
def test_1_2_tolerance_accepts_what_rounding_in_code_leaves(mu, sigma, capsys) -> None:
    mle.check_gaussian_mle(mu, sigma)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(("mu", "sigma", "hint"), [
    (MU + 2.0, SIGMA, "6 significant digits"), (MU - 2.0, SIGMA, "6 significant digits"),
    (MU, 700.0, "6 significant digits"), (MU, 700.55, "6 significant digits"),
    (MU, 701.0, "6 significant digits"), (MU + 50.0, SIGMA, "sample mean"),
])
def test_1_2_tolerance_rejects_near_misses_from_both_sides(mu, sigma, hint: str) -> None:
    rejects(mle.check_gaussian_mle, mu, sigma, hint=hint)


# ----------------------------------------------------------------------------- 2.1


def right_sampler(lam, n, rng):
    return rng.poisson(lam, size=n)


def test_2_1_accepts_a_poisson_model(capsys) -> None:
    mle.check_car_model("x_i ~ Poisson(lambda), IID", right_sampler)
    mle.check_car_model("x_i ~ Poisson(λ) i.i.d. for i = 1..3", right_sampler)
    assert "Exercise 2.1: correct." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("notation", "sampler", "hint"),
    [
        ("x_i ~ N(mu, sigma), IID", right_sampler, "normal puts mass"),
        ("x_i ~ Normal(lambda, lambda), IID", right_sampler, "normal puts mass"),
        ("x_i ~ Binomial(n, p), IID", right_sampler, "Poisson(lambda)"),
        ("x_i ~ Poisson, IID", right_sampler, "parameter"),
        ("x_i ~ Poisson(lambda)", right_sampler, "IID"),
        ("", right_sampler, "as text"),
        ("x_i ~ Poisson(lambda), IID",
         lambda lam, n, rng: rng.normal(lam, np.sqrt(lam), size=n), "normal model for counts"),
        ("x_i ~ Poisson(lambda), IID",
         lambda lam, n, rng: np.round(rng.normal(lam, 0.3 * lam + 3, size=n)),
         "normal model for counts"),
        ("x_i ~ Poisson(lambda), IID",
         lambda lam, n, rng: np.round(np.abs(rng.normal(lam, 0.5, size=n))),
         "variance equals its mean"),
        ("x_i ~ Poisson(lambda), IID", lambda lam, n, rng: rng.poisson(lam + 1, size=n), "mean"),
        ("x_i ~ Poisson(lambda), IID", lambda lam, n, rng: rng.poisson(lam, size=n - 1), "shape"),
        ("x_i ~ Poisson(lambda), IID",
         lambda lam, n, rng: np.random.default_rng().poisson(lam, size=n), "rng argument"),
    ],
    ids=["N", "Normal", "binomial", "no-param", "no-iid", "empty", "normal-sampler",
         "rounded-normal", "wrong-var", "wrong-mean", "shape", "global-rng"],
)
def test_2_1_rejects_mistakes(notation, sampler, hint: str) -> None:
    rejects(mle.check_car_model, notation, sampler, hint=hint)


# ----------------------------------------------------------------------------- 2.2


@pytest.mark.parametrize("answer", [{"lambda"}, frozenset({"lambda"}), ["λ"], ("lam",),
                                    {r"\lambda"}])
def test_2_2_accepts_lambda(answer, capsys) -> None:
    mle.check_car_parameter(answer)
    assert "Exercise 2.2: correct." in capsys.readouterr().out


# Issue 25: the bare string "lambda" passed where the text asks for a set.
@pytest.mark.parametrize(
    ("answer", "hint"),
    [({"mu", "sigma"}, "ONE parameter"), ({"mean", "variance"}, "ONE parameter"),
     ({"p"}, "inside Poisson(.)"), ([1.0], "strings"), ("lambda", "inside curly braces"),
     ("λ", "inside curly braces"), (2.67, "set of names")],
)
def test_2_2_rejects_mistakes(answer, hint: str) -> None:
    rejects(mle.check_car_parameter, answer, hint=hint)


# ----------------------------------------------------------------------------- 2.3


def test_2_3_accepts_the_mean(capsys) -> None:
    mle.check_poisson_mle(np.mean(CAR_COUNTS))
    mle.check_poisson_mle(8 / 3)
    assert "Exercise 2.3: correct." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [(float(np.var(CAR_COUNTS)), "variance"), (float(np.var(CAR_COUNTS, ddof=1)), "variance"),
     (-8 / 3, "Wrong sign"), (8.0, "divide by"), (3.0, "median"), (2.5, "derivative")],
)
def test_2_3_rejects_mistakes(answer, hint: str) -> None:
    rejects(mle.check_poisson_mle, answer, hint=hint)


@pytest.mark.parametrize("answer", [8 / 3, 8 / 3 * (1 + 5e-7), float(np.float32(8 / 3)), 2.666667])
def test_2_3_tolerance_accepts_what_rounding_in_code_leaves(answer, capsys) -> None:
    mle.check_poisson_mle(answer)
    assert "correct" in capsys.readouterr().out


# Issue 24: strings and True passed (a count of 1 is the MLE of the counts [1, 1, 1]); a
# requires-grad tensor in a list raised torch's error.
@pytest.mark.parametrize(("answer", "x", "hint"), [
    ("2.666667", CAR_COUNTS, "without quotes"), ([str(8 / 3)], CAR_COUNTS, "without quotes"),
    (True, [1, 1, 1], "True and False are not counts"),
    (np.bool_(True), [1, 1, 1], "True and False are not counts"),
])
def test_2_3_refuses_strings_and_bools(answer, x, hint: str) -> None:
    rejects(mle.check_poisson_mle, answer, x, hint=hint)


@pytest.mark.parametrize("answer", [
    torch.tensor(8 / 3, dtype=torch.float64, requires_grad=True),
    [torch.tensor(8 / 3, requires_grad=True)], np.array([8 / 3], dtype=np.float32)])
def test_2_3_accepts_any_numeric_form(answer, capsys) -> None:
    mle.check_poisson_mle(answer)
    assert "Exercise 2.3: correct." in capsys.readouterr().out


@pytest.mark.parametrize("answer", [2.667, 2.6667, 2.666, 2.6666, 2.668])
def test_2_3_tolerance_rejects_rounded_values_from_both_sides(answer) -> None:
    text = rejects(mle.check_poisson_mle, answer, hint="6 significant digits")
    # The old message read "lam_hat = 2.6667, expected 2.6667": now it names only the answer.
    assert f"lam_hat = {answer:.6g} is not" in text


# ----------------------------------------------------------------------------- 2.4

LAM = 8 / 3
RIGHT = float(np.sum(CAR_COUNTS * np.log(LAM) - LAM - special.gammaln(CAR_COUNTS + 1)))


def test_2_4_accepts_the_value(capsys) -> None:
    mle.check_poisson_log_likelihood(RIGHT)
    mle.check_poisson_log_likelihood(np.float32(RIGHT))
    assert capsys.readouterr().out.count("Exercise 2.4: correct.") == 2


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (float(np.sum(CAR_COUNTS * np.log(LAM) - LAM)), "ln(x_i!)"),
        (-RIGHT, "Wrong sign"),
        (float(stats.norm.logpdf(CAR_COUNTS, LAM, np.std(CAR_COUNTS)).sum()), "normal model"),
        (RIGHT / 3, "averaged"),
        (RIGHT / np.log(10), "base-10"),
        (float(np.exp(RIGHT)), "likelihood itself"),
        (-6.0, "Evaluate"),
    ],
)
def test_2_4_rejects_mistakes(answer, hint: str) -> None:
    rejects(mle.check_poisson_log_likelihood, answer, hint=hint)


def _poisson(sign_count=1.0, sign_rate=-1.0, sign_factorial=-1.0, log=np.log,
             factorial=lambda x: special.gammaln(x + 1), times=3):
    x = CAR_COUNTS  # three counts: -lambda three times
    return float(sign_count * np.sum(x * log(LAM)) + sign_rate * times * LAM
                 + sign_factorial * np.sum(factorial(x)))


# Issue 25: each used to get the general hint ("Evaluate sum_i (...)").
@pytest.mark.parametrize(("answer", "problem", "hint"), [
    (_poisson(factorial=special.gammaln), "off by one", "gammaln of x_i + 1"),
    (_poisson(sign_rate=1.0), "lambda term has the wrong sign", "subtracts lambda"),
    (_poisson(sign_factorial=1.0), "ln(x_i!) term has the wrong sign", "its log is subtracted"),
    (_poisson(sign_count=-1.0), "x_i ln lambda term has the wrong sign", "is added"),
    (_poisson(times=1), "counts once instead of once per observation", "n times"),
    (_poisson(log=np.log10), "base-10 logarithm in ln lambda", "np.log10"),
    (_poisson(factorial=lambda x: np.log10(special.factorial(x))),
     "base-10 logarithm in ln(x_i!)", "np.log10"),
    (float(np.sum(CAR_COUNTS * np.log10(LAM) - LAM - np.log10(special.factorial(CAR_COUNTS)))),
     "base-10 logarithms in ln lambda and ln(x_i!)", "natural log"),
], ids=["gammaln-x", "rate-sign", "factorial-sign", "count-sign", "rate-once", "log10-rate",
        "log10-factorial", "log10-both"])
def test_2_4_names_each_mistake(answer, problem: str, hint: str) -> None:
    error = diagnosis(mle.check_poisson_log_likelihood, answer,
                      general=mle.POISSON_LOG_LIKELIHOOD_HINT)
    assert problem in error.problem and hint in error.hint, str(error)
    assert "-5.1232" not in str(error)


@pytest.mark.parametrize("mistake", mle.POISSON_LOG_LIKELIHOOD_MISTAKES, ids=_short)
def test_2_4_each_known_mistake_gets_its_diagnosis(mistake) -> None:
    answer = mistake.answer(mle.PoissonCase(CAR_COUNTS, LAM, RIGHT))
    error = diagnosis(mle.check_poisson_log_likelihood, answer,
                      general=mle.POISSON_LOG_LIKELIHOOD_HINT)
    assert error.problem.startswith(mistake.problem) and error.hint == mistake.hint, str(error)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT * (1 + 9e-7), RIGHT * (1 - 9e-7)])
def test_2_4_tolerance_accepts_six_significant_digits(answer, capsys) -> None:
    mle.check_poisson_log_likelihood(answer)
    assert "correct" in capsys.readouterr().out


# -5.1232 is what a 4-decimal printout showed: typed in, it no longer passes.
@pytest.mark.parametrize("answer", [-5.1232, -5.123, -5.124, RIGHT + 2e-4, RIGHT - 2e-4, -5.12])
def test_2_4_tolerance_rejects_near_misses_from_both_sides(answer) -> None:
    rejects(mle.check_poisson_log_likelihood, answer, hint="6 significant digits")


# ----------------------------------------------------------------------------- all checks


@pytest.mark.parametrize(("check", "args"), [
    (mle.check_gaussian_log_likelihood, (right_loglik,)),
    (mle.check_gaussian_log_likelihood, (lambda x, m, s: -right_loglik(x, m, s),)),
    (mle.check_gaussian_mle, (MU, SIGMA)), (mle.check_car_model,
                                            ("x_i ~ Poisson(lambda), IID", right_sampler)),
    (mle.check_car_parameter, ({"lambda"},)), (mle.check_poisson_mle, (8 / 3,)),
    (mle.check_poisson_log_likelihood, (RIGHT,)), (mle.check_poisson_log_likelihood, (-RIGHT,)),
])
def test_checks_leave_the_notebooks_global_state_as_it_was(check, args) -> None:
    before = global_state()
    try:
        check(*args)
    except ExerciseError:
        pass
    assert global_state() == before
