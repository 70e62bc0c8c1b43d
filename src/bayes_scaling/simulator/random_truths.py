"""A randomised family of simulated truths for benchmarks (DESIGN.md sections 3 and 6).

Every key of the truth family is drawn (``L_init`` excepted, see below), each from a range that
contains the default truth and the published fits it was calibrated to, so that a benchmark
judges a strategy on worlds it was not designed on. Member ``i`` of family ``seed`` depends on
``(seed, i)`` only (never on how many members are drawn): ``family_truth(seed, i)``.

Ranges (``U``: uniform, ``logU``: log-uniform; "term" ranges fix an amplitude through the size
of its term at a reference scale, so amplitude and exponent are not drawn against each other):

- ``E`` U[1.5, 2.2]: Hoffmann et al. (2022) 1.69, Besiroglu et al. (2024) 1.82, C4 ~2 (Li et al.
  2025); default 1.8
- ``delta_data`` U[0, 0.3]: data-quality offset; default 0.15
- ``alpha`` U[0.28, 0.42]: Hoffmann 0.34, Besiroglu 0.348, default 0.3478
- ``A``: its N-term at 1e8 effective parameters logU[0.4, 1.0] nats: default 0.59, Hoffmann
  0.77, Besiroglu 0.80
- ``beta`` U[0.27, 0.42]: Hoffmann 0.28, Besiroglu 0.366, default 0.3658
- ``B``: its D-term at 1e10 tokens logU[0.07, 0.22] nats: default 0.12 (the steps term carries
  most of the data effect in this family), 0.6x-1.8x
- ``K``: its steps term at 1e4 steps logU[0.6, 1.4] nats: default 0.96
- ``gamma`` U[0.2, 0.35]: default 0.271
- ``eta0`` logU[3e-4, 1.2e-3]: default 6.15e-4 (0.5x-2x); Kaplan et al. (2020, eq. D.1) ~1e-3
- ``a_eta`` U[0.3, 0.7]: default 0.33; Step Law (Li et al. 2025) 0.713 on N
- ``b_eta`` U[-0.2, 0.2]: default 0; Step Law +0.307 on D (b_eta = -0.307), DeepSeek-AI (2024)
  lr ~ C^-0.125; issue 7's range
- ``D_eta`` logU[3e8, 3e9]: default 1e9
- ``p`` U[0.6, 1.2]: default 0.894
- ``chi`` logU[0.4, 1.5]: default 0.78
- ``S_chi`` logU[200, 800]: default 400
- ``kappa`` U[0.5, 1.1]: default 0.8
- ``AR0`` logU[50, 200]: default 100; Kaplan et al. (2020, fig. 5): flat over d/L 20-200
- ``c_deep`` logU[0.002, 0.008]: default 0.004 (0.5x-2x)
- ``c_wide`` logU[0.004, 0.016]: default 0.008 (0.5x-2x)
- ``c_head`` logU[0.0015, 0.006]: default 0.003 (0.5x-2x)
- ``omega`` U[0, 0.6]: default 0 (block FLOPs only); 0.5 ~ the package's convention
- ``lam`` U[0.05, 0.6]: default 0.237; Kaplan (2020, fig. 6) and Porian et al. (2024) on
  counting embedding-side parameters
- ``sigma_seed`` logU[0.01, 0.04]: default 0.02 (0.5x-2x)
- ``sigma_mb`` logU[0.015, 0.06]: default 0.03 (0.5x-2x)
- ``seed`` integer in [0, 2^31): the noise draw
- ``L_init`` 10.45 (kept): the untrained loss, ln 32000 = 10.37 plus the init's excess: a
  property of the vocabulary, not of the world

A drawn truth is kept only if :func:`check_truth` finds nothing wrong, else it is redrawn (the
reasons are kept in :class:`FamilyMember`): every mean loss over the API's grid (every allowed
d_model in steps of 64, layers, heads dividing d_model, batch size, learning rates spanning the
range, every compute level) finite, in ``(0, L_init]``; the best loss on the API grid falling
with compute from 1e16 to 1e18; and, at the 1e19 target, an optimum inside the evaluation
grid (not on its d_model or depth edge), with a loss in [2.4, 3.8] (default 3.01), at least
0.05 nats below the optimum at 1e18, 2-400 tokens per non-embedding parameter (default 66;
Chinchilla's 20) and an optimal learning rate in [1e-5, 1e-2].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.simulator.evaluation import true_optimum
from bayes_scaling.simulator.truth import Truth, mean_loss
from bayes_scaling.space import (
    BATCH_SIZES,
    D_MODEL_RANGE,
    LEARNING_RATE_RANGE,
    NUM_HEADS_RANGE,
    NUM_LAYERS_RANGE,
    TRAIN_FLOPS,
)

__all__ = [
    "RANGES",
    "FamilyMember",
    "check_truth",
    "draw_family_member",
    "draw_truths",
    "family_truth",
]

#: ``key: (kind, low, high)``; kind ``"u"`` uniform, ``"log"`` log-uniform. Keys ending in
#: ``_term`` are the sizes (nats) of a law term at a reference scale, turned into ``A``, ``B``
#: and ``K`` by :func:`_amplitudes`. See the module docstring for the grounds of each range.
RANGES: dict[str, tuple[str, float, float]] = {
    "E": ("u", 1.5, 2.2),
    "delta_data": ("u", 0.0, 0.3),
    "alpha": ("u", 0.28, 0.42),
    "n_term": ("log", 0.4, 1.0),
    "beta": ("u", 0.27, 0.42),
    "d_term": ("log", 0.07, 0.22),
    "k_term": ("log", 0.6, 1.4),
    "gamma": ("u", 0.2, 0.35),
    "eta0": ("log", 3e-4, 1.2e-3),
    "a_eta": ("u", 0.3, 0.7),
    "b_eta": ("u", -0.2, 0.2),
    "D_eta": ("log", 3e8, 3e9),
    "p": ("u", 0.6, 1.2),
    "chi": ("log", 0.4, 1.5),
    "S_chi": ("log", 200.0, 800.0),
    "kappa": ("u", 0.5, 1.1),
    "AR0": ("log", 50.0, 200.0),
    "c_deep": ("log", 0.002, 0.008),
    "c_wide": ("log", 0.004, 0.016),
    "c_head": ("log", 0.0015, 0.006),
    "omega": ("u", 0.0, 0.6),
    "lam": ("u", 0.05, 0.6),
    "sigma_seed": ("log", 0.01, 0.04),
    "sigma_mb": ("log", 0.015, 0.06),
}
#: Reference scales of the ``_term`` draws: effective parameters, tokens, optimizer steps.
N_TERM_REF = 1e8
D_TERM_REF = 1e10
K_TERM_REF = 1e4
#: Plausibility limits of :func:`check_truth` (module docstring).
TARGET_FLOPS = 1e19
TARGET_LOSS_RANGE = (2.4, 3.8)
MIN_DECADE_GAIN = 0.05
TOKENS_PER_PARAM_RANGE = (2.0, 400.0)
TARGET_LR_RANGE = (1e-5, 1e-2)
MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class FamilyMember:
    """One member of a family: its truth values and the draws rejected before it.

    Attributes
    ----------
    values : dict
        Every key of :class:`~bayes_scaling.simulator.truth.Truth`; ``Truth.from_mapping``
        accepts it.
    rejections : tuple of str
        Why each earlier draw for this member was rejected (empty: the first draw was kept).
    """

    values: dict
    rejections: tuple[str, ...]

    def truth(self) -> Truth:
        """The member as a :class:`Truth`."""
        return Truth.from_mapping(self.values, source="random truth")


def _draw(rng: np.random.Generator) -> dict:
    raw = {}
    for name, (kind, low, high) in RANGES.items():
        if kind == "log":
            raw[name] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        else:
            raw[name] = float(rng.uniform(low, high))
    return _amplitudes(raw, seed=int(rng.integers(0, 2**31)))


def _amplitudes(raw: dict, *, seed: int) -> dict:
    values = {k: v for k, v in raw.items() if not k.endswith("_term")}
    values["A"] = raw["n_term"] * N_TERM_REF ** raw["alpha"]
    values["B"] = raw["d_term"] * D_TERM_REF ** raw["beta"]
    values["K"] = raw["k_term"] * K_TERM_REF ** raw["gamma"]
    values["L_init"] = Truth().L_init
    values["seed"] = seed
    return {name: values[name] for name in Truth().to_dict()}


def _api_grid():
    d = np.arange(D_MODEL_RANGE[0], D_MODEL_RANGE[1] + 1, 64, dtype=np.float64)
    layers = np.arange(NUM_LAYERS_RANGE[0], NUM_LAYERS_RANGE[1] + 1, dtype=np.float64)
    heads = np.array([h for h in (2, 4, 8, 16) if NUM_HEADS_RANGE[0] <= h <= NUM_HEADS_RANGE[1]],
                     np.float64)
    lrs = np.exp(np.linspace(*np.log(LEARNING_RATE_RANGE), 5))
    grid = np.meshgrid(d, layers, heads, np.asarray(BATCH_SIZES, np.float64), lrs,
                       np.asarray(TRAIN_FLOPS, np.float64), indexing="ij")
    return tuple(g.ravel() for g in grid)


def check_truth(truth: Truth) -> list[str]:
    """Return why ``truth`` is implausible for a benchmark (empty list: plausible).

    See the module docstring for the checks.
    """
    problems = []
    d, layers, heads, bs, lr, flops = _api_grid()
    loss = np.asarray(mean_loss(truth, d, layers, heads, bs, lr, flops))
    if not np.all(np.isfinite(loss)):
        return ["non-finite mean loss on the API grid"]
    if np.any(loss <= 0) or np.any(loss > truth.L_init + 1e-9):
        problems.append(f"API-grid loss outside (0, L_init]: {loss.min():.3g}-{loss.max():.3g}")
    best = {c: float(loss[flops == c].min()) for c in (1e16, 1e17, 1e18)}
    if not best[1e16] > best[1e17] > best[1e18]:
        problems.append(f"best API-grid loss does not fall with compute: {best}")
    target = true_optimum(truth, TARGET_FLOPS)
    lower = true_optimum(truth, TARGET_FLOPS / 10)
    if target.d_model in (64, 4096) or target.num_layers in (1, 96):
        problems.append(f"1e19 optimum on the grid's edge (d_model {target.d_model}, "
                        f"num_layers {target.num_layers})")
    lo, hi = TARGET_LOSS_RANGE
    if not lo <= target.loss <= hi:
        problems.append(f"1e19 optimum loss {target.loss:.3f} outside [{lo}, {hi}]")
    if lower.loss - target.loss < MIN_DECADE_GAIN:
        problems.append(f"1e19 optimum only {lower.loss - target.loss:.3f} nats below 1e18's")
    ratio = target.tokens / target.non_embedding_params
    lo, hi = TOKENS_PER_PARAM_RANGE
    if not lo <= ratio <= hi:
        problems.append(f"1e19 tokens per parameter {ratio:.3g} outside [{lo}, {hi}]")
    lo, hi = TARGET_LR_RANGE
    if not lo <= target.learning_rate <= hi:
        problems.append(f"1e19 optimal learning rate {target.learning_rate:.3g} outside "
                        f"[{lo}, {hi}]")
    return problems


def _check_index(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidTruthError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def draw_family_member(seed: int, index: int) -> FamilyMember:
    """Draw member ``index`` of family ``seed``, redrawing implausible truths.

    Parameters
    ----------
    seed : int
        The family (any integer >= 0).
    index : int
        The member; members are independent of each other and of how many are drawn.

    Raises
    ------
    InvalidTruthError
        Bad arguments, or no plausible truth in ``MAX_ATTEMPTS`` draws (a bug in the ranges).
    """
    seed, index = _check_index("seed", seed), _check_index("index", index)
    rejections = []
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng(np.random.SeedSequence((seed, index, attempt)))
        values = _draw(rng)
        problems = check_truth(Truth.from_mapping(values, source="random truth"))
        if not problems:
            return FamilyMember(values=values, rejections=tuple(rejections))
        rejections.append("; ".join(problems))
    raise InvalidTruthError(
        f"random truth {index} of family {seed}: no plausible draw in {MAX_ATTEMPTS} attempts"
    )


def family_truth(seed: int, index: int) -> dict:
    """Truth values of member ``index`` of family ``seed`` (see :func:`draw_family_member`)."""
    return draw_family_member(seed, index).values


def draw_truths(seed: int, n: int) -> list[dict]:
    """Members ``0 .. n-1`` of family ``seed``, each a mapping ``Truth.from_mapping`` accepts."""
    n = _check_index("n", n)
    return [family_truth(seed, i) for i in range(n)]
