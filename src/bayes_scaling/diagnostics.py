"""MCMC diagnostics of a fit: one set of thresholds and one set of advice.

The fit computes :class:`Diagnostics` (r-hat and bulk/tail ESS over the latent sites, divergent
transitions) and returns them; it logs nothing. Whoever shows them (report.md, the ``fit`` and
``run`` commands, the loop) uses :func:`diagnostic_warnings`, so the thresholds the warnings fire
at are the ones report.md states: r-hat at most :data:`R_HAT_LIMIT` (Vehtari et al. 2021) and
bulk and tail ESS at least :data:`ESS_LIMIT` (their advice for reliable 90% intervals: 100 per
chain for 4 chains).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np

__all__ = ["ESS_LIMIT", "R_HAT_LIMIT", "Diagnostics", "diagnose", "diagnostic_warnings"]

#: Largest acceptable split r-hat over the latent sites.
R_HAT_LIMIT = 1.01
#: Smallest acceptable bulk and tail effective sample size over the latent sites.
ESS_LIMIT = 400


@dataclass(frozen=True, kw_only=True)
class Diagnostics:
    """Sampler diagnostics over the latent sites, and what to do when they are bad.

    ``r_hat_max`` is NaN for a single chain (r-hat needs two); ``warnings`` are
    :func:`diagnostic_warnings` of the other fields.
    """

    r_hat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready mapping."""
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def _value(diagnostics: Diagnostics | Mapping, name: str):
    source = diagnostics.as_dict() if isinstance(diagnostics, Diagnostics) else diagnostics
    value = source.get(name)
    return None if value is None else float(value)


def diagnostic_warnings(diagnostics: Diagnostics | Mapping) -> list[str]:
    """Plain-language warnings, each with what to do, for diagnostics past their limits.

    Parameters
    ----------
    diagnostics : Diagnostics or mapping
        ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min`` (optional) and ``divergences``.
    """
    out = []
    r_hat = _value(diagnostics, "r_hat_max")
    ess_bulk = _value(diagnostics, "ess_bulk_min")
    ess_tail = _value(diagnostics, "ess_tail_min")
    divergences = int(_value(diagnostics, "divergences") or 0)
    if r_hat is not None and math.isnan(r_hat):
        out.append("r_hat needs at least 2 chains: rerun with --num-chains 2 or more before "
                   "trusting the intervals")
    elif r_hat is not None and not r_hat <= R_HAT_LIMIT:
        out.append(
            f"r_hat_max = {r_hat:.3f} > {R_HAT_LIMIT}: the chains disagree; rerun with more "
            f"--num-warmup and --num-samples (and at least 2 --num-chains) before trusting it"
        )
    low = [f"{name} {value:.0f}" for name, value in (("bulk", ess_bulk), ("tail", ess_tail))
           if value is not None and not value >= ESS_LIMIT]
    if low:
        out.append(
            f"ess {' / '.join(low)} < {ESS_LIMIT}: few effective draws, so the intervals are "
            f"rough; rerun with more --num-samples or --num-chains"
        )
    if divergences > 0:
        out.append(
            f"{divergences} divergent transitions: the sampler may have missed part of the "
            f"posterior; rerun with more --num-warmup (a higher target acceptance helps)"
        )
    return out


def diagnose(idata: az.InferenceData, sites: Sequence[str], divergences: int) -> Diagnostics:
    """Diagnostics of the ``sites`` of ``idata.posterior`` (chains x draws) and their warnings."""
    names = list(sites)
    num_chains = int(idata.posterior.sizes["chain"])
    if num_chains > 1:
        r_hat = float(np.nanmax(az.rhat(idata, var_names=names).to_array().values))
    else:
        r_hat = float("nan")
    ess_bulk = float(np.nanmin(az.ess(idata, var_names=names, method="bulk").to_array().values))
    ess_tail = float(np.nanmin(az.ess(idata, var_names=names, method="tail").to_array().values))
    values = {"r_hat_max": r_hat, "ess_bulk_min": ess_bulk, "ess_tail_min": ess_tail,
              "divergences": int(divergences)}
    return Diagnostics(**values, warnings=diagnostic_warnings(values))
