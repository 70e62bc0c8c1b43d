"""The classic IsoFLOPs analysis (Hoffmann et al. 2022, approach 2), with a Bayesian twin.

Input: a JSON list of ``{"parameters", "compute_budget", "final_loss"}`` (the CS336 assignment 3
``isoflops_curves.json``). For each budget ``C``:

- the **minimum**: the run with the lowest loss (the course's method);
- the **vertex**: the minimum of a quadratic of loss in ``ln N`` fitted to that budget's runs
  (used only where the parabola opens upwards and its vertex lies inside the runs' range;
  otherwise the minimum is kept and the budget is flagged).

Then power laws ``N_opt = a C^b`` are fitted by least squares in log space, and
``D_opt = C / (6 N_opt) = C^(1-b) / (6 a)`` follows (fitting ``ln D_opt`` on ``ln C`` by least
squares gives exactly the same line). The Bayesian version regresses ``ln N_opt`` on ``ln C``
with a Student-t likelihood by NUTS and reports posterior intervals of ``N_opt`` and ``D_opt`` at
the prediction budgets (1e23 and 1e24 by default).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

from bayes_scaling.errors import DataFormatError
from bayes_scaling.summary import summarize

__all__ = [
    "BudgetOptimum",
    "IsoflopsData",
    "IsoflopsResult",
    "PowerLawFit",
    "analyze_isoflops",
    "budget_optima",
    "fit_power_law",
    "power_law_model",
    "quadratic_vertex",
    "read_isoflops",
    "sample_power_law",
    "write_isoflops_outputs",
]

PREDICT_AT = (1e23, 1e24)
_KEYS = ("parameters", "compute_budget", "final_loss")


@dataclass(frozen=True, kw_only=True)
class IsoflopsData:
    """IsoFLOP runs: float64 arrays of shape ``(M,)``."""

    path: str
    parameters: np.ndarray = field(repr=False)
    compute_budget: np.ndarray = field(repr=False)
    final_loss: np.ndarray = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class BudgetOptimum:
    """The optimum of one isoFLOP profile."""

    compute_budget: float
    n_runs: int
    n_min: float
    loss_min: float
    n_vertex: float
    loss_vertex: float
    vertex_ok: bool


@dataclass(frozen=True, kw_only=True)
class PowerLawFit:
    """``y = a x^b`` fitted in log space; ``sigma`` is the residual sd of ``ln y``."""

    a: float
    b: float
    sigma: float

    def __call__(self, x):
        """Evaluate ``a x^b``."""
        return self.a * np.power(np.asarray(x, np.float64), self.b)


@dataclass(frozen=True, kw_only=True)
class IsoflopsResult:
    """Everything the ``isoflops`` command reports; ``to_dict`` is isoflops.json."""

    data: IsoflopsData = field(repr=False)
    optima: tuple[BudgetOptimum, ...]
    method: str
    n_fit: PowerLawFit
    d_fit: PowerLawFit
    n_draws: np.ndarray = field(repr=False)  # (S, 2): ln a and b
    predict_at: tuple[float, ...]
    diagnostics: dict

    def optimal_n(self) -> np.ndarray:
        """Per-budget optimal N used for the fit (``method``), shape (B,)."""
        key = "n_vertex" if self.method == "vertex" else "n_min"
        return np.array([getattr(o, key) for o in self.optima])

    def budgets(self) -> np.ndarray:
        """Compute budgets, shape (B,)."""
        return np.array([o.compute_budget for o in self.optima])

    def bayes_n(self, flops) -> np.ndarray:
        """Posterior draws of the N_opt line at ``flops``, shape (S, len(flops))."""
        log_c = np.log(np.atleast_1d(np.asarray(flops, np.float64)))
        return np.exp(self.n_draws[:, :1] + self.n_draws[:, 1:2] * log_c[None, :])

    def to_dict(self) -> dict:
        """JSON-ready summary: optima, fits, predictions with intervals."""
        predictions = {}
        bayes_n = self.bayes_n(self.predict_at)
        for j, c in enumerate(self.predict_at):
            n_draws = bayes_n[:, j]
            predictions[f"{c:.0e}"] = {
                "compute_budget": c,
                "n_opt": float(self.n_fit(c)),
                "d_opt": float(self.d_fit(c)),
                "bayes_n_opt": summarize(n_draws),
                "bayes_d_opt": summarize(c / (6.0 * n_draws)),
            }
        return {
            "source": self.data.path,
            "n_runs": int(self.data.final_loss.size),
            "method": self.method,
            "token_rule": "D_opt = C / (6 N_opt)",
            "optima": [o.__dict__ for o in self.optima],
            "fit": {
                "n_opt": {"a": self.n_fit.a, "b": self.n_fit.b, "sigma_log": self.n_fit.sigma},
                "d_opt": {"a": self.d_fit.a, "b": self.d_fit.b, "sigma_log": self.d_fit.sigma},
            },
            "bayes": {
                "b": summarize(self.n_draws[:, 1]),
                "a": summarize(np.exp(self.n_draws[:, 0])),
                "likelihood": "Student-t on ln N_opt",
                **self.diagnostics,
            },
            "predictions": predictions,
        }


def read_isoflops(path: str | os.PathLike) -> IsoflopsData:
    """Read a ``[{parameters, compute_budget, final_loss}, ...]`` JSON file.

    Raises
    ------
    DataFormatError
        One line naming the file, the row (1-based position in the list) and the key.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: row 1: not a JSON file ({exc})") from None
    if not isinstance(payload, list) or not payload:
        raise DataFormatError(f"{path}: row 1: expected a non-empty JSON list of runs")
    columns = {key: [] for key in _KEYS}
    for i, row in enumerate(payload, start=1):
        if not isinstance(row, Mapping):
            raise DataFormatError(f"{path}: row {i}: expected an object, got {row!r}")
        for key in _KEYS:
            value = row.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise DataFormatError(
                    f"{path}: row {i}, column '{key}': expected a positive number, got {value!r}"
                )
            columns[key].append(float(value))
    return IsoflopsData(path=str(path), **{k: np.array(v) for k, v in columns.items()})


def quadratic_vertex(log_n, loss) -> tuple[float, float, bool]:
    """Minimum of one IsoFLOP profile: the vertex of a quadratic of loss in ``ln N``.

    The package's one rule (the classic analysis and the ``isoflop-grid`` baseline both use it):
    the vertex of the least-squares parabola when at least three distinct sizes were run, the
    parabola opens upwards and its vertex lies inside the sizes run; otherwise the lowest-loss
    run. It never extrapolates a profile: outside the runs the parabola's curvature is the part
    the data pin down least, and a vertex there is a guess, not a measured minimum.

    Returns
    -------
    (float, float, bool)
        ``ln N`` and loss at the minimum, and whether the vertex (not the best run) was used.
    """
    log_n = np.asarray(log_n, np.float64)
    loss = np.asarray(loss, np.float64)
    best = int(np.argmin(loss))
    if np.unique(log_n).size >= 3:
        c2, c1, c0 = np.polyfit(log_n, loss, 2)
        if c2 > 0:
            x_star = -c1 / (2 * c2)
            if log_n.min() <= x_star <= log_n.max():
                return float(x_star), float(c0 + c1 * x_star + c2 * x_star**2), True
    return float(log_n[best]), float(loss[best]), False


def budget_optima(data: IsoflopsData) -> tuple[BudgetOptimum, ...]:
    """Per-budget minimum and quadratic-in-ln-N vertex (:func:`quadratic_vertex`), by budget."""
    optima = []
    for c in np.unique(data.compute_budget):
        at = data.compute_budget == c
        n, loss = data.parameters[at], data.final_loss[at]
        i = int(np.argmin(loss))
        x_star, loss_vertex, ok = quadratic_vertex(np.log(n), loss)
        optima.append(BudgetOptimum(
            compute_budget=float(c), n_runs=int(n.size), n_min=float(n[i]),
            loss_min=float(loss[i]), n_vertex=float(np.exp(x_star)) if ok else float(n[i]),
            loss_vertex=loss_vertex, vertex_ok=ok,
        ))
    return tuple(optima)


def fit_power_law(x, y) -> PowerLawFit:
    """Least-squares fit of ``ln y = ln a + b ln x``; needs at least two distinct x."""
    log_x, log_y = np.log(np.asarray(x, np.float64)), np.log(np.asarray(y, np.float64))
    if np.unique(log_x).size < 2:
        raise DataFormatError("a power-law fit needs at least two distinct compute budgets")
    b, log_a = np.polyfit(log_x, log_y, 1)
    resid = log_y - (log_a + b * log_x)
    dof = max(log_x.size - 2, 1)
    return PowerLawFit(a=float(np.exp(log_a)), b=float(b),
                       sigma=float(np.sqrt(np.sum(resid**2) / dof)))


def power_law_model(log_c, log_n=None):
    """Numpyro model: ``ln N = ln a + b ln C + eps``, eps Student-t (nu >= 2) with scale sigma.

    The intercept is parameterised at the data's mean ``ln C`` (less correlation with ``b``).
    Priors: ``b ~ Normal(0.5, 0.25)`` (Chinchilla's 0.5 with a wide margin), centred intercept
    ``~ Normal(mean ln N, 5)``, ``sigma ~ HalfNormal(0.5)``, ``nu - 2 ~ Exponential(0.1)``.
    """
    centre = jnp.mean(log_c)
    level = jnp.mean(log_n) if log_n is not None else 20.0
    b = numpyro.sample("b", dist.Normal(0.5, 0.25))
    mid = numpyro.sample("mid", dist.Normal(level, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.5))
    nu = 2.0 + numpyro.sample("nu_excess", dist.Exponential(0.1))
    numpyro.deterministic("log_a", mid - b * centre)
    numpyro.sample("obs", dist.StudentT(nu, mid + b * (log_c - centre), sigma), obs=log_n)


def sample_power_law(rng_key, compute, n_opt, *, num_warmup=500, num_samples=1000,
                     num_chains=2) -> tuple[np.ndarray, dict]:
    """NUTS draws of ``(ln a, b)`` for ``N_opt = a C^b``: an ``(S, 2)`` array and diagnostics."""
    import arviz as az

    mcmc = MCMC(NUTS(power_law_model, target_accept_prob=0.9), num_warmup=num_warmup,
                num_samples=num_samples, num_chains=num_chains, chain_method="sequential",
                progress_bar=False)
    mcmc.run(rng_key, jnp.log(jnp.asarray(compute, jnp.float64)),
             log_n=jnp.log(jnp.asarray(n_opt, jnp.float64)))
    samples = mcmc.get_samples(group_by_chain=True)
    draws = np.stack([np.asarray(samples["log_a"]).ravel(), np.asarray(samples["b"]).ravel()],
                     axis=1)
    diagnostics = {"divergences": int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())}
    if num_chains >= 2:
        idata = az.from_dict(posterior={k: np.asarray(samples[k]) for k in ("b", "mid",
                                                                             "sigma")})
        summary = az.summary(idata, kind="diagnostics")
        diagnostics["r_hat_max"] = float(summary["r_hat"].max())
        diagnostics["ess_bulk_min"] = float(summary["ess_bulk"].min())
    return draws, diagnostics


def analyze_isoflops(
    rng_key,
    data: IsoflopsData,
    *,
    method: str = "minimum",
    predict_at: Sequence[float] = PREDICT_AT,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
) -> IsoflopsResult:
    """Run the whole analysis.

    Parameters
    ----------
    rng_key : jax.Array
    data : IsoflopsData
    method : {"minimum", "vertex"}
        Which per-budget optimum the power laws are fitted to.
    predict_at : sequence of float
        Budgets to predict ``N_opt`` and ``D_opt`` at.
    num_warmup, num_samples, num_chains : int
        NUTS settings of the Bayesian power-law fit.
    """
    if method not in ("minimum", "vertex"):
        raise DataFormatError(f"method: expected 'minimum' or 'vertex', got {method!r}")
    optima = budget_optima(data)
    compute = np.array([o.compute_budget for o in optima])
    n_opt = np.array([o.n_vertex if method == "vertex" else o.n_min for o in optima])
    n_fit = fit_power_law(compute, n_opt)
    d_fit = fit_power_law(compute, compute / (6.0 * n_opt))
    draws, diagnostics = sample_power_law(rng_key, compute, n_opt, num_warmup=num_warmup,
                                          num_samples=num_samples, num_chains=num_chains)
    return IsoflopsResult(data=data, optima=optima, method=method, n_fit=n_fit, d_fit=d_fit,
                          n_draws=draws, predict_at=tuple(float(c) for c in predict_at),
                          diagnostics=diagnostics)



def render_isoflops_markdown(result: IsoflopsResult, figures: Sequence[str]) -> str:
    """isoflops.md: predictions first, then the fits and the per-budget optima."""
    summary = result.to_dict()
    lines = [
        f"# IsoFLOPs analysis of {result.data.path}",
        "",
        f"Per-budget optimum: **{result.method}**; power laws fitted in log space; "
        "D_opt = C / (6 N_opt).",
        "",
        "## Predictions",
        "",
        "| compute | N_opt (fit) | N_opt Bayesian median (90%) | D_opt (fit) | "
        "D_opt Bayesian median (90%) |",
        "|---|---|---|---|---|",
    ]
    for p in summary["predictions"].values():
        bn, bd = p["bayes_n_opt"], p["bayes_d_opt"]
        lines.append(
            f"| {p['compute_budget']:.0e} | {p['n_opt']:.4g} | {bn['median']:.4g} "
            f"({bn['ci90'][0]:.3g}–{bn['ci90'][1]:.3g}) | {p['d_opt']:.4g} | {bd['median']:.4g} "
            f"({bd['ci90'][0]:.3g}–{bd['ci90'][1]:.3g}) |"
        )
    bayes = summary["bayes"]
    lines += [
        "",
        "## Fits",
        "",
        f"- N_opt = {result.n_fit.a:.4g} · C^{result.n_fit.b:.4f} (residual sd of ln N "
        f"{result.n_fit.sigma:.3f})",
        f"- D_opt = {result.d_fit.a:.4g} · C^{result.d_fit.b:.4f}",
        f"- Bayesian exponent b: {bayes['b']['median']:.4f} (90% {bayes['b']['ci90'][0]:.4f}–"
        f"{bayes['b']['ci90'][1]:.4f}); Student-t likelihood on ln N_opt; "
        f"divergences {bayes['divergences']}, r_hat_max {bayes.get('r_hat_max', 'n/a')}",
        "",
        "## Per-budget optima",
        "",
        "| compute | runs | N (min) | loss (min) | N (vertex) | loss (vertex) | vertex used? |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in result.optima:
        lines.append(
            f"| {o.compute_budget:.0e} | {o.n_runs} | {o.n_min:.4g} | {o.loss_min:.4f} | "
            f"{o.n_vertex:.4g} | {o.loss_vertex:.4f} | {'yes' if o.vertex_ok else 'no'} |"
        )
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def write_isoflops_outputs(out_dir: str | os.PathLike, result: IsoflopsResult) -> list[str]:
    """Write isoflops.json, isoflops.md and three PNGs atomically; return the file names."""
    from matplotlib.figure import Figure

    from bayes_scaling import plots
    from bayes_scaling.files import atomic_write_text, save_figure

    out = Path(out_dir)
    figures = {
        "isoflops_profiles.png": lambda ax: plots.plot_isoflops_profiles(ax, result),
        "isoflops_n_opt.png": lambda ax: plots.plot_isoflops_power_law(
            ax, result, quantity="n_params"),
        "isoflops_d_opt.png": lambda ax: plots.plot_isoflops_power_law(
            ax, result, quantity="n_tokens"),
    }
    for name, draw in figures.items():
        fig = Figure(figsize=(6.5, 4.5))
        draw(fig.add_subplot())
        save_figure(fig, out / name)
    atomic_write_text(out / "isoflops.json", json.dumps(result.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "isoflops.md", render_isoflops_markdown(result, list(figures)))
    return ["isoflops.json", "isoflops.md", *figures]
