"""Quantile summaries of draws: the one place that turns draws into medians and intervals.

Every interval the package reports is equal-tailed: the 90% interval is the 5% and 95%
quantiles, the 50% interval the 25% and 75% quantiles (NumPy's default linear interpolation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["equal_tailed", "summarize"]


def equal_tailed(draws, level: float = 0.9, *, axis=None) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Return ``(low, median, high)`` of the equal-tailed ``level`` interval along ``axis``.

    Parameters
    ----------
    draws : array-like
        Draws; with ``axis=None`` all of them, flattened.
    level : float
        Central probability of the interval, in (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    tail = (1.0 - level) / 2.0
    low, median, high = np.quantile(np.asarray(draws, np.float64), [tail, 0.5, 1.0 - tail],
                                    axis=axis)
    return low, median, high


def summarize(draws) -> dict[str, Any]:
    """Median and equal-tailed 50% / 90% intervals of a vector of draws.

    Returns
    -------
    dict
        ``{"median": m, "ci50": [q25, q75], "ci90": [q05, q95]}`` as Python floats.
    """
    values = np.asarray(draws, dtype=np.float64).ravel()
    q05, q25, q50, q75, q95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"median": float(q50), "ci50": [float(q25), float(q75)],
            "ci90": [float(q05), float(q95)]}
