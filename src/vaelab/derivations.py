"""Three derivations of ln p(x) >= ELBO, every line turned into numbers.

A derivation is a list of ``Row``s. Each row is one expression of the derivation with

- ``exact``: its value in closed form (or finite sum, or quadrature: whatever the model
  has), computed from the pieces that appear *in that expression*;
- ``mc``: a Monte Carlo estimate of the same expression from samples z_s ~ q(z|x)
  (the expectation's integrand averaged), with its standard error, where one applies;
- ``relation`` to the row above: "=" (checked: |difference| <= 1e-10), ">=" or "<="
  (checked: the row above is >= or <= this one), or "" (a new statement or a named term:
  nothing to check against the row above);
- ``from_line``: optionally, an earlier line this row equals plus a named amount (checked),
  for a step such as "add the ELBO to both sides" that acts on earlier lines;
- ``note``: the one step that leads to the row (a definition, Bayes' rule, linearity of
  expectation, "a KL is never negative"), as written beside the notebook's maths.

``Row.checks`` says what was checked and ``Row.passed`` whether it held: a reader can
point at any line and find the number that checks it. ``format_derivation`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vaelab.elbo import (
    ElboTerms,
    Estimate,
    SampleTerms,
    elbo_terms,
    format_estimate,
    log_mean_exp_estimate,
    mc_estimate,
    sample_terms,
)
from vaelab.validation import InputTypeError, require_int, require_positive_int

#: Tolerance of an exact "=": closed forms agree to rounding error, far below this.
EXACT_TOL = 1e-10
#: A Monte Carlo estimate passes when it is within this many standard errors.
MC_SIGMAS = 4.0


@dataclass
class Row:
    """One line of a derivation (see the module docstring). Checks are filled by ``derive``."""

    relation: str
    expression: str
    exact: float
    mc: Estimate | None = None
    note: str = ""
    from_line: tuple[int, str, float] | None = None  # (line, name, amount): = line + amount
    checks: str = ""
    passed: bool = True


@dataclass
class Derivation:
    """A titled list of rows, already checked."""

    title: str
    rows: list[Row]
    exact_method: str

    @property
    def passed(self) -> bool:
        """True when every row's checks held."""
        return all(row.passed for row in self.rows)

    def failures(self) -> list[str]:
        """'line 3: ...' for every row whose check failed."""
        return [f"line {i}: {r.expression}: {r.checks}"
                for i, r in enumerate(self.rows, 1) if not r.passed]


def check_rows(rows: list[Row]) -> list[Row]:
    """Fill each row's ``checks`` and ``passed``: the relation to the row above, the earlier
    line it comes from (``from_line``) and the MC test."""
    previous: Row | None = None
    for number, row in enumerate(rows, 1):
        notes, ok = [], True
        if row.relation in ("=", ">=", "<=") and previous is None:
            raise ValueError(f"the first row cannot have the relation {row.relation!r}")
        if row.relation == "=":
            assert previous is not None
            good = abs(row.exact - previous.exact) <= EXACT_TOL
            notes.append("= above (1e-10)" if good else
                         f"differs from above by {abs(row.exact - previous.exact):.2e}")
            ok &= good
        elif row.relation == ">=":
            assert previous is not None
            good = previous.exact >= row.exact - EXACT_TOL
            notes.append("<= above" if good else "NOT <= above")
            ok &= good
        elif row.relation == "<=":
            assert previous is not None
            good = previous.exact <= row.exact + EXACT_TOL
            notes.append(">= above" if good else "NOT >= above")
            ok &= good
        elif row.relation != "":
            raise ValueError(f"relation must be '=', '>=', '<=' or '', got {row.relation!r}")
        if row.from_line is not None:
            line, name, amount = row.from_line
            if not 1 <= line < number:
                raise ValueError(f"line {number} can only come from an earlier line, "
                                 f"got from_line {line}")
            source = rows[line - 1].exact + amount
            good = abs(row.exact - source) <= EXACT_TOL
            notes.append(f"= line {line} + {name} (1e-10)" if good else
                         f"differs from line {line} + {name} by {abs(row.exact - source):.2e}")
            ok &= good
        if row.mc is not None:
            good = row.mc.within(row.exact, MC_SIGMAS, EXACT_TOL)
            if row.mc.std_error < 1e-12:
                notes.append("MC = exact" if good else "MC differs")
            else:
                z = (row.mc.mean - row.exact) / row.mc.std_error
                notes.append(f"MC within {abs(z):.1f} SE" if good else f"MC off by {z:.1f} SE")
            ok &= good
        row.checks, row.passed = "; ".join(notes), bool(ok)
        previous = row
    return rows


# Expressions, written once so the three derivations name the same thing the same way.
_KL_POST = "KL(q(z|x) || p(z|x))"
_KL_PRIOR = "KL(q(z|x) || p(z))"
_ELL = "E_q[ln p(x|z)]"


def derivation_1(t: ElboTerms, s: SampleTerms, exact_method: str = "closed form") -> Derivation:
    """From KL(q || p(z|x)) >= 0 to ln p(x) >= ELBO, one named step per line.

    Lines 1-7: 0 <= KL(q || p(z|x)) = ... = ln p(x) - ELBO (definition of the KL, Bayes'
    rule, linearity of expectation, definition of the KL, definition of the ELBO); lines 8-9
    add the ELBO to both ends: ELBO <= ln p(x).
    """
    mc = mc_estimate
    elbo_samples = s.log_likelihood + s.log_prior - s.log_q  # the ELBO's integrand
    rows = [
        Row("", "0", 0.0),
        Row("<=", _KL_POST, t.kl_posterior, None, "a KL is never negative (closed form)"),
        Row("=", "E_q[ln q(z|x) - ln p(z|x)]", -t.entropy - _expected_log_posterior(t),
            mc(s.log_q - s.log_posterior), "definition of the KL"),
        Row("=", "E_q[ln q(z|x) - ln p(x|z) - ln p(z) + ln p(x)]",
            -t.entropy - t.expected_log_likelihood - t.expected_log_prior + t.log_marginal,
            mc(s.log_q - s.log_likelihood - s.log_prior + t.log_marginal),
            "Bayes' rule: ln p(z|x) = ln p(x|z) + ln p(z) - ln p(x)"),
        Row("=", f"E_q[ln q(z|x) - ln p(z)] - {_ELL} + ln p(x)",
            (-t.entropy - t.expected_log_prior) - t.expected_log_likelihood + t.log_marginal,
            None, "linearity of expectation; ln p(x) does not depend on z"),
        Row("=", f"{_KL_PRIOR} - {_ELL} + ln p(x)",
            t.kl_prior - t.expected_log_likelihood + t.log_marginal,
            None, "definition of the KL (to the prior; closed form)"),
        Row("=", "ln p(x) - ELBO", t.log_marginal - t.elbo, None,
            f"definition of the ELBO: {_ELL} - {_KL_PRIOR}"),
        Row("", "ELBO", t.elbo, mc(elbo_samples), "line 1 plus the ELBO",
            from_line=(1, "ELBO", t.elbo)),
        Row("<=", "ln p(x)", t.log_marginal, None,
            "line 7 plus the ELBO (adding one number to both sides keeps <=)",
            from_line=(7, "ELBO", t.elbo)),
    ]
    return Derivation("Derivation 1: from KL(q || p(z|x)) >= 0", check_rows(rows), exact_method)


def derivation_2(t: ElboTerms, s: SampleTerms, exact_method: str = "closed form") -> Derivation:
    """ln p(x) = E_q[ln p(x)], Bayes' rule, times q/q, three expectations, two KLs."""
    mc = mc_estimate
    per_sample_bayes = s.log_likelihood + s.log_prior - s.log_posterior
    rows = [
        Row("", "ln p(x)", t.log_marginal, None, "exact evidence"),
        Row("=", "E_q[ln p(x)]", t.log_marginal, mc(np.full_like(s.log_q, t.log_marginal)),
            "a constant's expectation"),
        Row("=", "E_q[ln (p(x|z) p(z) / p(z|x))]",
            t.expected_log_likelihood + t.expected_log_prior - _expected_log_posterior(t),
            mc(per_sample_bayes), "Bayes; the same number at every z"),
        Row("=", "E_q[ln (p(x|z) p(z) / p(z|x) * q(z|x) / q(z|x))]",
            t.expected_log_likelihood + t.expected_log_prior - _expected_log_posterior(t),
            mc(per_sample_bayes + s.log_q - s.log_q), "times q/q = 1"),
        Row("=", "E_q[ln p(x|z)] - E_q[ln q(z|x)/p(z)] + E_q[ln q(z|x)/p(z|x)]",
            t.expected_log_likelihood - (-t.entropy - t.expected_log_prior)
            + (-t.entropy - _expected_log_posterior(t)),
            None, "split the log into three expectations"),
        Row("", "  term 1: E_q[ln p(x|z)]", t.expected_log_likelihood, mc(s.log_likelihood), ""),
        Row("", "  term 2: E_q[ln q(z|x)/p(z)]", -t.entropy - t.expected_log_prior,
            mc(s.log_q - s.log_prior), ""),
        Row("", "  term 3: E_q[ln q(z|x)/p(z|x)]", -t.entropy - _expected_log_posterior(t),
            mc(s.log_q - s.log_posterior), ""),
        Row("", "ln p(x)", t.log_marginal, None, "so:"),
        Row("=", f"{_ELL} - {_KL_PRIOR} + {_KL_POST}",
            t.expected_log_likelihood - t.kl_prior + t.kl_posterior, None,
            "terms 2 and 3 are KLs (closed forms)"),
        Row("=", f"ELBO + {_KL_POST}", t.elbo + t.kl_posterior, None, ""),
        Row(">=", "ELBO", t.elbo, None, "the KL is >= 0"),
    ]
    return Derivation("Derivation 2: ln p(x) = E_q[ln p(x)], Bayes, times q/q",
                      check_rows(rows), exact_method)


def derivation_3(t: ElboTerms, s: SampleTerms, prior_log_likelihood: np.ndarray,
                 exact_method: str = "closed form") -> Derivation:
    """ln p(x) = ln int p(x, z) dz, times q/q, Jensen, expand ln p(x, z).

    prior_log_likelihood: ln p(x|z_s) at z_s ~ p(z), shape (m,): the MC for ln int p(x,z) dz.
    """
    jensen_gap = t.log_marginal - (t.expected_log_likelihood + t.expected_log_prior + t.entropy)
    rows = [
        Row("", "ln p(x)", t.log_marginal, None, "exact evidence"),
        Row("=", "ln int p(x, z) dz = ln E_p(z)[p(x|z)]", t.log_marginal,
            log_mean_exp_estimate(prior_log_likelihood), "marginalise z (MC: z ~ p(z))"),
        Row("=", "ln E_q[p(x, z) / q(z|x)]", t.log_marginal,
            log_mean_exp_estimate(s.log_weights), "times q/q: importance sampling, z ~ q"),
        Row(">=", "E_q[ln (p(x, z) / q(z|x))]",
            t.expected_log_likelihood + t.expected_log_prior + t.entropy,
            mc_estimate(s.log_weights), "Jensen: ln E[w] >= E[ln w]"),
        Row("=", "E_q[ln p(x|z) + ln p(z) - ln q(z|x)]",
            t.expected_log_likelihood + t.expected_log_prior + t.entropy,
            mc_estimate(s.log_likelihood + s.log_prior - s.log_q),
            "ln p(x, z) = ln p(x|z) + ln p(z)"),
        Row("=", f"{_ELL} - {_KL_PRIOR}  (the ELBO)", t.elbo, None, "closed-form KL"),
        Row("", "Jensen gap: line 3 - line 4", jensen_gap, None, "what the inequality loses"),
        Row("=", _KL_POST, t.kl_posterior, mc_estimate(s.log_q - s.log_posterior),
            "the gap is the KL to the posterior"),
    ]
    return Derivation("Derivation 3: ln of an integral, times q/q, Jensen", check_rows(rows),
                      exact_method)


def _expected_log_posterior(t: ElboTerms) -> float:
    """E_q[ln p(z|x)] = E_q[ln p(x|z)] + E_q[ln p(z)] - ln p(x) (Bayes, inside the expectation)."""
    # Computed from the closed-form pieces, never from the KL to the posterior, so the
    # rows that use it check that KL's formula instead of repeating it.
    return t.expected_log_likelihood + t.expected_log_prior - t.log_marginal


def derive_all(model: Any, x: Any, q: Any, n: int, rng: np.random.Generator) -> list[Derivation]:
    """The three derivations for one model, x and q, with n Monte Carlo samples each.

    Draws n samples from q (shared by all rows) and n from the prior (derivation 3, line 2).
    """
    n = require_positive_int(n, "n")
    if n < 2:
        raise ValueError("n must be >= 2 for standard errors")
    terms = elbo_terms(model, x, q)
    samples = sample_terms(model, x, q, n, rng)
    prior_ll = np.asarray(model.log_likelihood(x, model.sample_prior(n, rng)), dtype=np.float64)
    method = model.exact_method
    return [derivation_1(terms, samples, method), derivation_2(terms, samples, method),
            derivation_3(terms, samples, prior_ll, method)]


def format_derivation(d: Derivation, width: int = 62) -> str:
    """A text table: line, relation, expression, exact value, Monte Carlo ± SE, check."""
    if not isinstance(d, Derivation):
        raise InputTypeError(f"d must be a Derivation (derive_all returns them), got {d!r}")
    width = require_int(width, "width", 1)
    head = (f"{d.title}   (exact = {d.exact_method}; MC = mean ± 1 standard error)\n"
            f"{'#':>2}  {'':2} {'expression':<{width}} {'exact':>12}  {'Monte Carlo':<20} check")
    lines = [head, "-" * len(head.splitlines()[1])]
    for i, r in enumerate(d.rows, 1):
        rel = r.relation
        mc = format_estimate(r.mc) if r.mc is not None else ""
        check = r.checks or "-"
        lines.append(f"{i:>2}  {rel:<2} {r.expression:<{width}} {r.exact:>12.6f}  {mc:<20} "
                     f"{check}{'' if r.passed else '  <-- FAILED'}")
    return "\n".join(lines)
