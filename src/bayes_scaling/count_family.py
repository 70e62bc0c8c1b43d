"""Which parameter count the law's ``N`` is: the model family a posterior was fitted in.

The statistical model (:mod:`bayes_scaling.model`) sees, per API row, three counts besides the
shape: the **block** parameters (the law's size, with the embedding side added at weight ``lam``),
the **embedding-side** parameters, and the embedding-side parameters its FLOP-to-token convention
may count (weight ``omega``, learned). A :class:`CountFamily` gives them for a grid of
``(d_model, num_layers)`` shapes (the posterior's optimum search and the recommendation grid),
together with the count the package reports as ``N`` (``n_params``):

- :data:`FAMILY_2025`, the 2025 API's model (DESIGN.md section 4): block ``L (12 d^2 + 7 d) + d``,
  embedding side ``2 * 32000 d + 512 d``, all of it in the token convention (the API's
  ``train_flops`` fixes tokens only through an unknown convention), ``N`` = the non-embedding
  count ``L (12 d^2 + 7 d) + d + 32000 d`` (the untied head counts);
- :func:`family_2026`, the 2026 job API's model (``API_2026.md`` section 4,
  :mod:`bayes_scaling.params2026`) at one head dimension and one intermediate ratio: block = ``N``
  = the 2026 non-embedding count ``L (4 d^2 + 3 d f + 2 hd + 2 d) + d`` (token table and LM head
  excluded), embedding side the token table plus the untied head ``2 V d``, and none of it in the
  token convention, because a 2026 run states its tokens exactly (``total_train_tokens``), so the
  law's ``C = 6 N T`` gives back ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_scaling.params import (
    block_params,
    embedding_side_params,
    non_embedding_params,
)

__all__ = ["FAMILY_2025", "CountFamily", "family_2026", "intermediate_size_for"]


def intermediate_size_for(hidden_size, ratio: float):
    """``max(d, round(ratio d / 64) * 64)``: a 2026 intermediate size (a multiple of 64, >= d).

    Broadcasts over arrays (int64 out for arrays, int for scalars).
    """
    d = np.asarray(hidden_size, dtype=np.int64)
    out = np.maximum(d, np.round(ratio * d / 64.0).astype(np.int64) * 64)
    return int(out) if out.ndim == 0 else out


@dataclass(frozen=True, kw_only=True)
class CountFamily:
    """The parameter counts of one model family on a grid of shapes.

    Attributes
    ----------
    api : str
        ``"2025"`` or ``"2026"``.
    head_dim : int
        Head dimension of the family's shapes (2026; the 2025 count does not depend on it).
    intermediate_ratio : float
        ``intermediate_size / hidden_size`` before rounding (2026; see
        :func:`intermediate_size_for`).
    """

    api: str = "2025"
    head_dim: int = 64
    intermediate_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.api not in ("2025", "2026"):
            raise ValueError(f"api: expected '2025' or '2026', got {self.api!r}")
        if isinstance(self.head_dim, bool) or self.head_dim < 2 or self.head_dim % 2:
            raise ValueError(f"head_dim: expected an even integer >= 2, got {self.head_dim!r}")
        if not 1.0 <= self.intermediate_ratio <= 16.0:
            raise ValueError(
                f"intermediate_ratio: expected a number in [1, 16], got {self.intermediate_ratio!r}"
            )

    @property
    def description(self) -> str:
        """One sentence for reports: which count ``N`` is."""
        if self.api == "2025":
            return ("non-embedding parameters of the 2025 API's model, L(12d^2+7d)+d+32000d "
                    "(the untied output head counts)")
        return ("non-embedding parameters of the 2026 API's model, L(4d^2+3df+2hd+2d)+d "
                "(token table and LM head excluded; the optimum's shapes have head_dim "
                f"{self.head_dim}, intermediate_size = {self.intermediate_ratio:.3g} d rounded "
                "to 64)")

    def as_dict(self) -> dict:
        """The fields, for report.json."""
        return {"api": self.api, "head_dim": self.head_dim,
                "intermediate_ratio": float(self.intermediate_ratio)}

    def counts(self, d_model, num_layers, *, continuous: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(block, embedding, embedding_in_flops, n_params)`` of each shape, float64 arrays.

        ``continuous=True`` (2026): the intermediate size is ``max(d, ratio d)`` unrounded, so
        the counts are smooth in a real-valued ``d_model`` (the plots' continuous shape family).
        """
        d = np.asarray(d_model, dtype=np.float64)
        layers = np.asarray(num_layers, dtype=np.float64)
        if self.api == "2025":
            block = np.asarray(block_params(d, layers), np.float64)
            emb = np.asarray(embedding_side_params(d), np.float64)
            n = np.asarray(non_embedding_params(d, layers), np.float64)
            return block, emb, emb, n
        from bayes_scaling.params2026 import VOCAB_SIZE, non_embedding_params_2026

        f = (np.maximum(d, self.intermediate_ratio * d) if continuous else
             np.asarray(intermediate_size_for(np.asarray(d_model), self.intermediate_ratio),
                        np.float64))
        n = np.asarray(non_embedding_params_2026(d, layers, f, float(self.head_dim)), np.float64)
        emb = 2.0 * VOCAB_SIZE * d
        return n, emb, np.zeros_like(n), n

    def num_heads(self, d_model: int) -> int:
        """Heads of a width: ``d / 64`` (2025) or ``d / head_dim`` (2026)."""
        return int(d_model) // (64 if self.api == "2025" else self.head_dim)

    def exact_counts(self, d_model: int, num_layers: int) -> tuple[int, int]:
        """``(non_embedding, total)`` of one shape, counted on the family's PyTorch model."""
        if self.api == "2025":
            from bayes_scaling.params import count_params

            counts = count_params(int(d_model), int(num_layers), self.num_heads(d_model))
            return int(counts.non_embedding), int(counts.total)
        from bayes_scaling.params2026 import architecture_2026, count_params_2026

        arch = architecture_2026(
            int(d_model), int(num_layers), self.num_heads(d_model),
            intermediate_size_for(int(d_model), self.intermediate_ratio), head_dim=self.head_dim,
        )
        counts = count_params_2026(arch)
        return int(counts.non_embedding), int(counts.total)


FAMILY_2025 = CountFamily()
"""The 2025 API's counts (the package's default everywhere)."""


def family_2026(*, head_dim: int = 64, intermediate_ratio: float = 8.0 / 3.0) -> CountFamily:
    """The 2026 API's counts for shapes of one head dimension and intermediate ratio."""
    return CountFamily(api="2026", head_dim=int(head_dim),
                       intermediate_ratio=float(intermediate_ratio))
