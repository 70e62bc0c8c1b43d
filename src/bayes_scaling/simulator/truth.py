"""The simulator's truth family (DESIGN.md section 3), as pure JAX functions.

A :class:`Truth` holds the constants; :func:`mean_loss` is the noise-free loss surface and
:func:`observed_loss` adds the noise that is fixed by ``(seed, configuration)``, so a repeated
query returns the identical loss. All logarithms are natural.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.params import CONTEXT_LENGTH, VOCAB_SIZE, block_params, embedding_side_params
from bayes_scaling.space import RunConfig
from bayes_scaling.textfile import read_text

__all__ = [
    "CONTEXT_LENGTH",
    "TRUTH_RANGES",
    "VOCAB_SIZE",
    "Truth",
    "load_truth",
    "mean_loss",
    "noise_sd",
    "observed_loss",
    "optimal_learning_rate",
    "truth_tokens",
]



_OPEN, _CLOSED = "(", "["

#: Allowed value of every key: ``(low, high, bracket)``, closed above; ``bracket`` says whether
#: ``low`` itself is allowed (``"["``) or not (``"("``). Wide enough for every preset, random
#: benchmark truth and calibration refit; narrow enough that no loss can be non-finite.
TRUTH_RANGES: dict[str, tuple[float, float, str]] = {
    "E": (0.0, 10.0, _CLOSED), "delta_data": (-1.0, 5.0, _CLOSED),
    "A": (0.0, 1e6, _OPEN), "alpha": (0.0, 2.0, _OPEN),
    "B": (0.0, 1e6, _OPEN), "beta": (0.0, 2.0, _OPEN),
    "lam": (0.0, 10.0, _CLOSED), "K": (0.0, 1e4, _CLOSED), "gamma": (0.0, 2.0, _OPEN),
    "eta0": (0.0, 1.0, _OPEN), "a_eta": (-2.0, 2.0, _CLOSED), "b_eta": (-2.0, 2.0, _CLOSED),
    "D_eta": (0.0, 1e15, _OPEN), "p": (0.0, 10.0, _CLOSED), "chi": (0.0, 100.0, _CLOSED),
    "S_chi": (0.0, 1e9, _OPEN), "kappa": (0.0, 10.0, _CLOSED), "AR0": (0.0, 1e4, _OPEN),
    "c_deep": (0.0, 1.0, _CLOSED), "c_wide": (0.0, 1.0, _CLOSED), "c_head": (0.0, 1.0, _CLOSED),
    "omega": (0.0, 10.0, _CLOSED), "L_init": (0.0, 100.0, _OPEN),
    "sigma_seed": (0.0, 1.0, _CLOSED), "sigma_mb": (0.0, 1.0, _CLOSED),
    "seed": (0, 2**63 - 1, _CLOSED),
}


def _check_range(source: str, name: str, value: float) -> None:
    low, high, bracket = TRUTH_RANGES[name]
    inside = (low <= value if bracket == _CLOSED else low < value) and value <= high
    if not inside:
        raise InvalidTruthError(
            f"{source}: {name}: expected a value in {bracket}{low:g}, {high:g}], got {value!r}"
        )


@dataclass(frozen=True, kw_only=True)
class Truth:
    """Constants of the truth family; defaults are DESIGN.md's preset."""

    E: float = 1.8
    delta_data: float = 0.15
    A: float = 358.3
    alpha: float = 0.3478
    B: float = 558.0
    beta: float = 0.3658
    lam: float = 0.237
    K: float = 11.66
    gamma: float = 0.271
    eta0: float = 6.15e-4
    a_eta: float = 0.330
    b_eta: float = 0.0
    D_eta: float = 1e9
    p: float = 0.894
    chi: float = 0.78
    S_chi: float = 400.0
    kappa: float = 0.8
    AR0: float = 100.0
    c_deep: float = 0.004
    c_wide: float = 0.008
    c_head: float = 0.003
    omega: float = 0.0
    L_init: float = 10.45
    sigma_seed: float = 0.02
    sigma_mb: float = 0.03
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "truth") -> Truth:
        """Build a truth from a mapping; every key is optional, unknown keys are an error.

        Raises
        ------
        InvalidTruthError
            Naming the source and the offending key, e.g. an unknown key with the known ones.
        """
        if not isinstance(values, Mapping):
            raise InvalidTruthError(
                f"{source}: expected a JSON object, got {type(values).__name__}"
            )
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidTruthError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}"
            )
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidTruthError(
                    f"{source}: {name} must be a number, got {value!r}"
                )
            if not math.isfinite(value):
                raise InvalidTruthError(f"{source}: {name} must be finite, got {value!r}")
            if name == "seed":
                if value != int(value):
                    raise InvalidTruthError(f"{source}: seed must be an integer, got {value!r}")
                value = int(value)
            _check_range(source, name, value)
            checked[name] = value
        truth = cls(**checked)
        _check_losses(truth, source)
        return truth

    def to_dict(self) -> dict[str, Any]:
        """Return the truth as a JSON-ready mapping (every key, defaults included)."""
        return asdict(self)


def _check_losses(truth: Truth, source: str) -> None:
    """Refuse a truth whose mean loss is non-finite or not positive anywhere it is evaluated.

    Probes the corners of everything the simulator answers: the API's shapes and the
    evaluation's (d_model 64..4096, 1..96 layers, 1..64 heads), both batch sizes, learning rates
    far outside the API's range, and computes from 1e13 to 1e24 FLOPs.
    """
    grid = np.meshgrid([64.0, 4096.0], [1.0, 96.0], [1.0, 64.0], [128.0, 256.0],
                       [1e-6, 1e-4, 1e-3, 1e-1], [1e13, 1e18, 1e19, 1e24], indexing="ij")
    loss = np.asarray(mean_loss(truth, *(g.ravel() for g in grid)), np.float64)
    bad = ~(np.isfinite(loss) & (loss > 0))
    if bad.any():
        i = int(np.argmax(bad))
        where = ", ".join(f"{n}={g.ravel()[i]:g}" for n, g in zip(
            ("d_model", "num_layers", "num_heads", "batch_size", "learning_rate", "flops"),
            grid, strict=True))
        raise InvalidTruthError(
            f"{source}: expected a truth whose losses are finite and positive, got loss "
            f"{float(loss[i])!r} at {where}"
        )
    sd = float(noise_sd(truth, 128))
    if not math.isfinite(sd):
        raise InvalidTruthError(f"{source}: expected a finite noise sd, got {sd!r}")


def load_truth(path: str | Path | None) -> Truth:
    """Read a truth JSON file; ``None`` gives the default preset.

    Raises
    ------
    InvalidTruthError
        One line naming the file: unreadable, not UTF-8 JSON, unknown keys, values out of
        :data:`TRUTH_RANGES`, or losses that could be non-finite.
    """
    if path is None:
        return Truth()
    path = Path(path)
    text = read_text(path, what="truth file", error=InvalidTruthError)
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise InvalidTruthError(f"{path}: not valid JSON ({exc})") from None
    return Truth.from_mapping(values, source=str(path))


def _counts(d_model, num_layers):
    """Exact block + final-LayerNorm parameters, and embedding-side parameters (section 3)."""
    return block_params(d_model, num_layers), embedding_side_params(d_model)


def truth_tokens(truth: Truth, d_model, num_layers, flops):
    """Tokens the truth trains on: ``D = C / (6 (body + omega emb))``."""
    body, emb = _counts(jnp.asarray(d_model, jnp.float64), jnp.asarray(num_layers, jnp.float64))
    return jnp.asarray(flops, jnp.float64) / (6.0 * (body + truth.omega * emb))


def optimal_learning_rate(truth: Truth, d_model, num_layers, flops):
    """Compute the truth's optimal learning rate ``eta*`` of a shape at a compute."""
    body, _ = _counts(jnp.asarray(d_model, jnp.float64), jnp.asarray(num_layers, jnp.float64))
    tokens = truth_tokens(truth, d_model, num_layers, flops)
    return (
        truth.eta0
        * jnp.power(body / 1e8, -truth.a_eta)
        * jnp.power(tokens / truth.D_eta, -truth.b_eta)
    )


def mean_loss(truth: Truth, d_model, num_layers, num_heads, batch_size, learning_rate, flops):
    """Compute the noise-free loss of configurations; arguments broadcast together.

    No API range limits apply: any positive shape, batch size, learning rate and compute.
    """
    d = jnp.asarray(d_model, jnp.float64)
    n_layers = jnp.asarray(num_layers, jnp.float64)
    heads = jnp.asarray(num_heads, jnp.float64)
    bs = jnp.asarray(batch_size, jnp.float64)
    lr = jnp.asarray(learning_rate, jnp.float64)
    body, emb = _counts(d, n_layers)
    tokens = truth_tokens(truth, d, n_layers, flops)
    steps = tokens / (bs * CONTEXT_LENGTH)
    eta_star = optimal_learning_rate(truth, d, n_layers, flops)
    x = jnp.log(lr / eta_star)
    steps_eff = steps * jnp.exp(truth.p * jnp.minimum(x, 0.0))
    base = (
        truth.E
        + truth.delta_data
        + truth.A * jnp.power(body + truth.lam * emb, -truth.alpha)
        + truth.B * jnp.power(tokens, -truth.beta)
        + truth.K * jnp.power(steps_eff, -truth.gamma)
        + truth.chi
        * jnp.minimum(jnp.power(steps / truth.S_chi, -truth.kappa), 2.0)
        * jnp.maximum(x, 0.0) ** 2
    )
    aspect = d / n_layers
    c_ar = jnp.where(aspect < truth.AR0, truth.c_deep, truth.c_wide)
    shape = (
        1.0
        + c_ar * jnp.log(aspect / truth.AR0) ** 2
        + truth.c_head * jnp.log((d / heads) / 64.0) ** 2
    )
    raw = base * shape
    return truth.L_init - jnp.logaddexp(0.0, 3.0 * (truth.L_init - raw)) / 3.0


def noise_sd(truth: Truth, batch_size):
    """Compute the sd of the per-configuration noise: seed noise and minibatch noise."""
    bs = jnp.asarray(batch_size, jnp.float64)
    return jnp.sqrt(truth.sigma_seed**2 + truth.sigma_mb**2 * 128.0 / bs)


def _standard_normal(seed: int, config: RunConfig) -> float:
    """Draw a standard normal fixed by ``(seed, configuration)`` and nothing else."""
    text = repr((int(seed),) + config.key()).encode()
    digest = hashlib.sha256(text).digest()
    generator = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return float(generator.standard_normal())


def observed_loss(truth: Truth, config: RunConfig) -> float:
    """Return the simulated API's loss for ``config``: mean plus its fixed noise draw."""
    mean = mean_loss(
        truth,
        config.d_model,
        config.num_layers,
        config.num_heads,
        config.batch_size,
        config.learning_rate,
        config.train_flops,
    )
    eps = _standard_normal(truth.seed, config) * noise_sd(truth, config.batch_size)
    return float(mean + eps)
