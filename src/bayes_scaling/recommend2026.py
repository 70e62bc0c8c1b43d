"""The 2026 recommendation: the TrainingConfig of lowest posterior mean log loss in the hours.

The 2026 target is not a compute but a time: the best configuration for ``hours`` of one B200.
At a fixed time a small model's tokens cost more than ``6 N`` FLOPs each (the LM head, attention
and a GPU used less well by small matrices, spec §2.5), so ranking shapes at one fixed
``C = 6 N D`` favours models that are too small. :func:`choose_target_config` ranks every
candidate at *its own* token count instead:

1. candidates: the target shape grid of :func:`bayes_scaling.recommend.candidate_shapes` (widths
   with an even number of heads, aspect ratio in the band) in the 2026 family of the chosen head
   dimension and intermediate ratio, each at batch size 128 and 256;
2. memory guard: a candidate whose training step does not fit one B200
   (:func:`bayes_scaling.memory2026.training_memory_bytes`, the simulator's rule) is excluded;
3. tokens: what fills ``hours`` at the runtime model's median throughput with one predictive sd
   on the safe side (``hours exp(-sd)``, the margin the loop has always used; the sd is the one
   of the filled run, found by a few fixed-point passes), rounded down to a multiple of
   ``512 B n_evals``;
4. each candidate at its posterior-median optimal learning rate (clipped as in
   :mod:`bayes_scaling.learning_rate_choice`; the GPT-3 table where the posterior has no lr
   term) is scored by :func:`target_score`, the posterior mean of its log loss
   (exponentiated); the minimiser wins;
5. its learning rate is then the factor of
   :data:`bayes_scaling.learning_rate_choice.LEARNING_RATE_FACTORS` around that median with the
   lowest score (the tokens do not depend on it).

Why the log loss and not the expected loss with the extrapolation discrepancy's cost
(:meth:`PosteriorQueries.expected_loss`, which ranked before): the discrepancy is symmetric on
``ln loss`` (it says how far the law may be off, not in which direction), so its only effect on
an expected loss is the lognormal factor ``exp(tau^2 u^2 / 2)``, which grows faster than
exponentially with the distance ``u`` and, under the heavy-tailed ``tau`` prior, is carried by the
few draws with the largest ``tau``. Every 48-hour candidate lies 4-5 nats beyond the runs, so that
factor added 0.1-0.4 nats and decided between candidates by the noise of a few draws, for models
that were too small (a perturbed truth's recommendation at 0.08x the best size).

The best candidate the guard removed is recorded when it would have scored better than the
choice (``TargetChoice.excluded_best``), so the report can say the guard changed the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayes_scaling.api2026.schemas import MAX_RUNTIME_SECONDS, SEQ_LEN, TrainingConfig
from bayes_scaling.candidates2026 import round_tokens, schedule_warmup_steps, training_config
from bayes_scaling.count_family import family_2026, intermediate_size_for
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import RunFeatures
from bayes_scaling.learning_rate_choice import (
    LEARNING_RATE_CLIP,
    LEARNING_RATE_FACTORS,
    default_learning_rate,
    median_learning_rate,
)
from bayes_scaling.memory2026 import (
    B200_MEMORY_BYTES,
    config_memory_bytes,
    training_memory_bytes,
)
from bayes_scaling.params import ASPECT_RATIO_BAND
from bayes_scaling.params2026 import total_params_2026
from bayes_scaling.recommend import candidate_shapes

__all__ = ["TARGET_BATCH_SIZES", "TARGET_HEAD_DIMS", "TargetChoice", "choose_target_config",
           "target_score"]

#: Head dimensions a recommended configuration may have (the 2025 path's 64, or 128).
TARGET_HEAD_DIMS = (64, 128)
#: Batch sizes the target candidates are ranked at.
TARGET_BATCH_SIZES = (128, 256)
TARGET_N_EVALS = 16


@dataclass(frozen=True, kw_only=True)
class TargetChoice:
    """The chosen target configuration and how it was chosen.

    Attributes
    ----------
    training_config : TrainingConfig
        The complete configuration (``max_runtime_seconds`` at the API's cap: a 48-hour run
        cannot state its own runtime, spec §3).
    target_score : float
        Its :func:`target_score` (the score it was chosen by: ``exp`` of the posterior mean of
        its log loss, not an expected loss).
    predicted_seconds : float
        Its median predicted runtime.
    memory_bytes : float
        What its training step needs (:mod:`bayes_scaling.memory2026`).
    memory_capacity : float
    n_candidates : int
        (shape, batch) candidates ranked, the excluded ones included.
    n_out_of_memory : int
        Candidates the memory guard excluded.
    excluded_best : dict or None
        The best excluded candidate, when it scored better than the choice: its
        ``hidden_size``, ``num_layers``, ``batch_size``, ``tokens``, ``target_score`` and
        ``memory_bytes``. None when the guard did not change the answer.
    """

    training_config: TrainingConfig
    target_score: float
    predicted_seconds: float
    memory_bytes: float
    memory_capacity: float
    n_candidates: int
    n_out_of_memory: int
    excluded_best: dict | None

    def as_dict(self) -> dict:
        """JSON-ready fields (the configuration left out: the report has it)."""
        return {"target_score": self.target_score, "predicted_seconds": self.predicted_seconds,
                "memory_bytes": self.memory_bytes, "memory_capacity": self.memory_capacity,
                "n_candidates": self.n_candidates, "n_out_of_memory": self.n_out_of_memory,
                "excluded_best": self.excluded_best}


def target_score(posterior, features: RunFeatures) -> np.ndarray:
    """``exp(E ln mu)``: the posterior mean of each candidate's log mean loss, ``(M,)``.

    Parameter uncertainty counts (the average is over the posterior's draws); the extrapolation
    discrepancy, symmetric on ``ln loss``, does not move it (module docstring).
    """
    return np.exp(np.mean(np.log(posterior.predict_mean(features)), axis=0))


def _features(d, layers, batch, lr, tokens, n, family, warmup_frac) -> RunFeatures:
    """Law features of target candidates, with their warmup steps (the model prices them)."""
    d = np.asarray(d, np.float64)
    steps = np.asarray(tokens, np.float64) / (SEQ_LEN * np.asarray(batch, np.float64))
    return RunFeatures(
        d_model=d, num_layers=np.asarray(layers, np.float64),
        num_heads=d / family.head_dim, batch_size=np.asarray(batch, np.float64),
        learning_rate=np.asarray(lr, np.float64), flops=6.0 * n * tokens, n_params=n,
        n_tokens=np.asarray(tokens, np.float64), family=family,
        warmup_steps=schedule_warmup_steps(steps, warmup_frac),
    )


def choose_target_config(
    posterior,
    runtime,
    *,
    hours: float,
    head_dim: int = 64,
    intermediate_ratio: float = 8.0 / 3.0,
    warmup_frac: float = 0.05,
    batch_sizes: tuple[int, ...] = TARGET_BATCH_SIZES,
    aspect_ratio_band: tuple[float, float] = ASPECT_RATIO_BAND,
    memory_capacity: float = B200_MEMORY_BYTES,
) -> TargetChoice:
    """The configuration of lowest :func:`target_score` for ``hours`` (module docstring).

    Parameters
    ----------
    posterior : PosteriorQueries
        Fitted on 2026 runs (their :func:`~bayes_scaling.candidates2026.law_features`).
    runtime : RuntimeModel
        Fitted on the completed runs' runtimes.
    hours : float
        B200-hours of the target run.
    head_dim : int
        One of :data:`TARGET_HEAD_DIMS`.
    intermediate_ratio, warmup_frac : float
        The intermediate size's ratio to the width and the warmup fraction of every candidate.
    batch_sizes : tuple of int
    aspect_ratio_band : (float, float)
    memory_capacity : float
        Bytes of the GPU (default one B200).

    Raises
    ------
    InvalidConfigError
        If the head dimension is not allowed, or no candidate fits the memory and the hours.
    """
    if head_dim not in TARGET_HEAD_DIMS:
        raise InvalidConfigError(f"head_dim: expected one of {TARGET_HEAD_DIMS}, got {head_dim!r}")
    if not (math.isfinite(hours) and hours > 0):
        raise InvalidConfigError(f"hours: expected a positive number, got {hours!r}")
    family = family_2026(head_dim=head_dim, intermediate_ratio=intermediate_ratio)
    d_grid, l_grid, n_grid = candidate_shapes(aspect_ratio_band, practical=True, family=family)
    f_grid = intermediate_size_for(d_grid, intermediate_ratio)
    total = total_params_2026(d_grid, l_grid, f_grid, head_dim)  # untied, as the TrainingConfig
    rows = []  # (d, L, f, n, batch, memory)
    for batch in batch_sizes:
        memory = training_memory_bytes(total_params=total, hidden_size=d_grid,
                                       num_layers=l_grid, intermediate_size=f_grid,
                                       batch_size=batch)
        # Shapes needing over twice the memory are far past the guard: not ranked at all.
        for i in np.flatnonzero(memory <= 2.0 * memory_capacity):
            rows.append((int(d_grid[i]), int(l_grid[i]), int(f_grid[i]), float(n_grid[i]),
                         int(batch), float(memory[i])))
    if not rows:
        raise InvalidConfigError("no target candidate: every shape exceeds twice the memory")
    drafts = [dict(hidden_size=d, num_layers=layers, head_dim=head_dim, intermediate_size=f,
                   peak_learning_rate=1e-3, warmup_frac=float(warmup_frac), batch_size=batch)
              for d, layers, f, _, batch, _ in rows]
    probes = [training_config(**draft, tokens=1.0, max_runtime_seconds=1.0,
                              n_evals=TARGET_N_EVALS) for draft in drafts]
    raw_tokens = np.ones(len(probes))
    for _ in range(6):  # the margin's sd at the filled run (it may depend on the tokens)
        filled = [p.model_copy(update={"total_train_tokens": max(1, int(t))})
                  for p, t in zip(probes, raw_tokens, strict=True)]
        _, sd = runtime.log_seconds(filled)
        before, raw_tokens = raw_tokens, runtime.tokens_for_seconds_many(
            probes, hours * 3600.0 * np.exp(-sd))
        if np.all(np.abs(raw_tokens - before) <= 1e-3 * raw_tokens):
            break
    tokens = np.array([round_tokens(t, draft["batch_size"], TARGET_N_EVALS) if t > 0 else 0.0
                       for t, draft in zip(raw_tokens, drafts, strict=True)], np.float64)
    unit = np.array([SEQ_LEN * draft["batch_size"] * TARGET_N_EVALS for draft in drafts], float)
    ok = raw_tokens >= unit
    d, layers, _, n, batch, memory = (np.array(col, np.float64) for col in zip(*rows, strict=True))
    fits = ok & (memory <= memory_capacity)
    if not fits.any():
        raise InvalidConfigError(
            f"no target candidate fits {memory_capacity:.3g} bytes and {hours:g} hours")
    keep = np.flatnonzero(ok)
    probe = _features(d[keep], layers[keep], batch[keep], np.full(keep.size, 1e-3),
                      tokens[keep], n[keep], family, warmup_frac)
    lr = median_learning_rate(posterior, probe)
    from_posterior = lr is not None
    if lr is None:
        lr = np.array([default_learning_rate(x) for x in n[keep]])
    score = np.full(len(rows), np.inf)
    score[keep] = target_score(posterior,
        _features(d[keep], layers[keep], batch[keep], lr, tokens[keep], n[keep], family,
                  warmup_frac))
    best = int(np.argmin(np.where(fits, score, np.inf)))
    lr_best = float(lr[int(np.flatnonzero(keep == best)[0])])
    final_score = float(score[best])
    if from_posterior:  # the learning rate of lowest score around the median
        grid = np.clip(lr_best * LEARNING_RATE_FACTORS, *LEARNING_RATE_CLIP)
        count = grid.size
        scores = target_score(posterior, _features(
            np.full(count, d[best]), np.full(count, layers[best]), np.full(count, batch[best]),
            grid, np.full(count, tokens[best]), np.full(count, n[best]), family, warmup_frac))
        order = np.abs(np.log(LEARNING_RATE_FACTORS))  # exact ties: nearest the median
        pick = int(np.argmin(scores + 1e-12 * order))
        lr_best, final_score = float(grid[pick]), min(float(scores[pick]), final_score)
    final = training_config(**{**drafts[best], "peak_learning_rate": float(f"{lr_best:.3g}")},
                            tokens=tokens[best], max_runtime_seconds=MAX_RUNTIME_SECONDS,
                            n_evals=TARGET_N_EVALS)
    excluded = np.where(ok & ~fits, score, np.inf)
    removed = int(np.argmin(excluded))
    excluded_best = None
    if np.isfinite(excluded[removed]) and excluded[removed] < score[best]:
        excluded_best = {
            "hidden_size": int(d[removed]), "num_layers": int(layers[removed]),
            "batch_size": int(batch[removed]), "tokens": float(tokens[removed]),
            "target_score": float(score[removed]),
            "memory_bytes": float(memory[removed]),
        }
    return TargetChoice(
        training_config=final, target_score=final_score,
        predicted_seconds=float(runtime.seconds([final])[0]),
        memory_bytes=config_memory_bytes(final),
        memory_capacity=float(memory_capacity), n_candidates=len(rows),
        n_out_of_memory=int(np.sum(memory > memory_capacity)), excluded_best=excluded_best,
    )
