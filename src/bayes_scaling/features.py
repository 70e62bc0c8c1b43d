"""Per-run features the statistical model sees: shapes, hyperparameters, counts and tokens.

Two kinds of row share one container, :class:`RunFeatures`:

- **API rows** (from :class:`~bayes_scaling.space.RunConfig`): every field is finite. ``n_params``
  is the non-embedding count of DESIGN.md section 4 (``L (12 d^2 + 7 d) + d + 32000 d``, from
  :func:`bayes_scaling.params.non_embedding_params`, which a test proves equal to the PyTorch
  reference model) and ``n_tokens`` is the package's token convention
  ``flops / (6 * n_params)``.
- **generic rows** (a published table with only a parameter count and a token count): ``n_params``
  and ``n_tokens`` are whatever convention the source used, ``flops = 6 n_params n_tokens``, and
  ``d_model``, ``num_layers``, ``num_heads``, ``batch_size``, ``learning_rate`` are NaN. The model
  switches its nuisance terms (learning rate, optimizer steps, shape, the loss cap) off on them.

Which count ``n_params`` is on API rows is the features' ``family``
(:class:`~bayes_scaling.count_family.CountFamily`): the 2025 API's model by default, the 2026
API's for :func:`bayes_scaling.candidates2026.law_features`. Beside it every API row carries the
model's three counts (``block_params``, ``embedding_params``, ``flops_embedding_params``, see
:mod:`bayes_scaling.count_family`); unless given, they are the family's counts of the row's
``d_model`` and ``num_layers`` (NaN on generic rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from bayes_scaling.count_family import FAMILY_2025, CountFamily
from bayes_scaling.errors import DataFormatError
from bayes_scaling.space import RunConfig

__all__ = ["RunFeatures", "features_from_configs", "features_from_generic"]

_FIELDS = (
    "d_model",
    "num_layers",
    "num_heads",
    "batch_size",
    "learning_rate",
    "flops",
    "n_params",
    "n_tokens",
    "block_params",
    "embedding_params",
    "flops_embedding_params",
)
_COUNTS = ("block_params", "embedding_params", "flops_embedding_params")


@dataclass(frozen=True, kw_only=True)
class RunFeatures:
    """Features of ``M`` runs, each a float64 array of shape ``(M,)``.

    Attributes
    ----------
    d_model, num_layers, num_heads, batch_size, learning_rate : np.ndarray
        The API configuration; NaN on generic rows.
    flops : np.ndarray
        Training compute ``C``.
    n_params : np.ndarray
        Non-embedding parameters (API rows) or the source's count (generic rows).
    n_tokens : np.ndarray
        ``flops / (6 n_params)`` on API rows, the source's tokens on generic rows.
    block_params, embedding_params, flops_embedding_params : np.ndarray or None
        The model's counts of each API row (NaN on generic rows); None: ``family``'s counts of
        ``d_model`` and ``num_layers``.
    warmup_steps : np.ndarray or None
        Learning-rate warmup steps of each run (2026 job-API runs, which state their schedule;
        :func:`bayes_scaling.candidates2026.law_features`); None where the rows state none
        (every 2025 and generic row). Only the 2026 family's model reads it
        (:func:`bayes_scaling.law.warmup_penalty`).
    family : CountFamily
        Which model's counts ``n_params`` and the three above are.
    """

    d_model: np.ndarray
    num_layers: np.ndarray
    num_heads: np.ndarray
    batch_size: np.ndarray
    learning_rate: np.ndarray
    flops: np.ndarray
    n_params: np.ndarray
    n_tokens: np.ndarray
    block_params: np.ndarray | None = None
    embedding_params: np.ndarray | None = None
    flops_embedding_params: np.ndarray | None = None
    warmup_steps: np.ndarray | None = None
    family: CountFamily = FAMILY_2025

    def __post_init__(self):
        if any(getattr(self, name) is None for name in _COUNTS):
            d = np.atleast_1d(np.asarray(self.d_model, dtype=np.float64))
            layers = np.atleast_1d(np.asarray(self.num_layers, dtype=np.float64))
            known = np.isfinite(d) & np.isfinite(layers)
            counts = self.family.counts(np.where(known, d, 64.0), np.where(known, layers, 1.0))
            for name, value in zip(_COUNTS, counts[:3], strict=True):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, np.where(known, value, np.nan))
        length = None
        for name in _FIELDS:
            value = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            if value.ndim != 1:
                raise DataFormatError(f"{name}: expected a 1-D array, got shape {value.shape}")
            if length is None:
                length = value.shape[0]
            elif value.shape[0] != length:
                raise DataFormatError(
                    f"{name}: expected {length} values like d_model, got {value.shape[0]}"
                )
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        for name in ("flops", "n_params", "n_tokens"):
            value = getattr(self, name)
            if not np.all(np.isfinite(value) & (value > 0)):
                raise DataFormatError(f"{name}: expected finite positive values, got {value}")
        if self.warmup_steps is not None:
            value = np.atleast_1d(np.asarray(self.warmup_steps, dtype=np.float64))
            if value.shape != (length,) or not np.all(np.isfinite(value) & (value >= 0)):
                raise DataFormatError(f"warmup_steps: expected {length} finite values >= 0, "
                                      f"got {value}")
            value.setflags(write=False)
            object.__setattr__(self, "warmup_steps", value)

    def __len__(self) -> int:
        return int(self.flops.shape[0])

    @property
    def is_config(self) -> np.ndarray:
        """Boolean ``(M,)``: True on API rows (shape, batch size and learning rate known)."""
        cols = (self.d_model, self.num_layers, self.batch_size, self.learning_rate)
        return np.all([np.isfinite(c) for c in cols], axis=0)

    def take(self, indices) -> RunFeatures:
        """Return the rows at ``indices`` (an index array or boolean mask) as new features."""
        return RunFeatures(**{name: getattr(self, name)[indices] for name in _FIELDS},
                           warmup_steps=(None if self.warmup_steps is None
                                         else self.warmup_steps[indices]),
                           family=self.family)

    @staticmethod
    def concat(parts: Sequence[RunFeatures]) -> RunFeatures:
        """Rows of several feature sets (of one family), in order."""
        families = {p.family for p in parts}
        if len(families) > 1:
            raise DataFormatError(f"features: expected rows of one count family, got {families}")
        warmup = [p.warmup_steps for p in parts]
        return RunFeatures(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS},
            warmup_steps=(None if not parts or any(w is None for w in warmup)
                          else np.concatenate(warmup)),
            family=families.pop() if families else FAMILY_2025,
        )

    def as_dict(self) -> dict[str, np.ndarray]:
        """Return the fields as a plain mapping of arrays."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def features_from_configs(
    configs: Sequence[RunConfig], *, family: CountFamily = FAMILY_2025
) -> RunFeatures:
    """Features of API configurations (the loss is kept apart, see :mod:`bayes_scaling.inference`).

    Parameters
    ----------
    configs : sequence of RunConfig
        Need not be valid API queries (the simulator evaluates any shape), but every number must
        be positive.
    family : CountFamily
        Whose counts ``n_params`` is (default the 2025 API's model); ``n_tokens`` is
        ``train_flops / (6 n_params)``.
    """
    configs = list(configs)
    d = np.array([c.d_model for c in configs], dtype=np.float64)
    n_layers = np.array([c.num_layers for c in configs], dtype=np.float64)
    flops = np.array([c.train_flops for c in configs], dtype=np.float64)
    block, emb, emb_flops, n_params = family.counts(d, n_layers)
    return RunFeatures(
        d_model=d,
        num_layers=n_layers,
        num_heads=np.array([c.num_heads for c in configs], dtype=np.float64),
        batch_size=np.array([c.batch_size for c in configs], dtype=np.float64),
        learning_rate=np.array([c.learning_rate for c in configs], dtype=np.float64),
        flops=flops,
        n_params=n_params,
        n_tokens=flops / (6.0 * n_params),
        block_params=block,
        embedding_params=emb,
        flops_embedding_params=emb_flops,
        family=family,
    )


def features_from_generic(n_params, n_tokens) -> RunFeatures:
    """Features of generic rows that know only a parameter count and a token count.

    ``flops = 6 n_params n_tokens``; the configuration fields are NaN.
    """
    n = np.atleast_1d(np.asarray(n_params, dtype=np.float64))
    tokens = np.atleast_1d(np.asarray(n_tokens, dtype=np.float64))
    if n.shape != tokens.shape:
        raise DataFormatError(
            f"n_tokens: expected the shape of n_params {n.shape}, got {tokens.shape}"
        )
    nan = np.full(n.shape, np.nan)
    return RunFeatures(
        d_model=nan,
        num_layers=nan,
        num_heads=nan,
        batch_size=nan,
        learning_rate=nan,
        flops=6.0 * n * tokens,
        n_params=n,
        n_tokens=tokens,
    )
