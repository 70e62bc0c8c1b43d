"""Pydantic models of the 2026 training API (``shared/API_2026.md`` sections 1.3-1.7).

Every model is frozen and forbids unknown keys, as on the course server. Validation runs in
pydantic's lax mode, like the server's: ``60`` is a valid float, ``1e6`` a valid int.

:class:`TrainingConfig` runs the server's 17 cross-field checks after every per-field check has
passed, in the spec's order, and reports the first failure with the server's exact message
(pydantic prefixes it with ``"Value error, "``; FastAPI places it at ``loc ["body"]``).
The optimizer is an untagged smart union ``SGDConfig | AdamWConfig``: a body with only
``lr_scheduler`` (and perhaps ``grad_clip_norm``) is SGD, ``{}`` is AdamW with defaults, and any
AdamW-only key makes it AdamW (spec §1.3, "Union trap").

:func:`config_unique_id` is the server's duplicate key (the 409 rule, §1.7): configurations that
validate to equal values have equal keys, and the optimizer's class is part of the key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_RUNTIME_SECONDS",
    "MAX_TRAIN_TOKENS",
    "N_VAL_TOKENS",
    "SEQ_LEN",
    "TOTAL_BUDGET_SECONDS",
    "AdamWConfig",
    "BasicTransformerConfig",
    "BudgetSummary",
    "CompletedStatus",
    "ExperimentResponse",
    "ExperimentStatus",
    "FailedStatus",
    "FailureReason",
    "FinalSubmissionRequest",
    "FinalSubmissionResponse",
    "OptimizerConfig",
    "QueuedStatus",
    "RunningStatus",
    "SGDConfig",
    "SubmitResponse",
    "TimeoutReason",
    "TrainingConfig",
    "UnexpectedReason",
    "WarmupCosineDecay",
    "architecture_error",
    "config_unique_id",
    "cross_field_error",
]

SEQ_LEN = 512
"""Tokens per sequence; a class constant of TrainingConfig, not a sendable field."""
N_VAL_TOKENS = 2**18
"""Validation tokens per evaluation (512 sequences of 512)."""
MAX_TRAIN_TOKENS = 500_000_000_000
"""Upper bound of ``total_train_tokens``."""
MAX_RUNTIME_SECONDS = 43_200.0
"""Upper bound of ``max_runtime_seconds`` (12 hours)."""
TOTAL_BUDGET_SECONDS = 43_200.0
"""Seconds of B200 time each key may spend (12 B200-hours)."""


class _Frozen(BaseModel):
    """Base of every wire model: immutable, unknown keys rejected (``extra_forbidden``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The name this class has in the course's code; it enters config_unique_id.
    wire_type: ClassVar[str] = ""


class WarmupCosineDecay(_Frozen):
    """Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``peak*final``.

    Warmup lasts ``floor(total_steps * warmup_frac)`` steps; the decay ends at ``total_steps``
    (its length counts the warmup), as optax's ``warmup_cosine_decay_schedule``.
    """

    wire_type: ClassVar[str] = "cs336_scaling.training.optimizer.WarmupCosineDecay"

    peak_value: float = 3e-4
    final_lr_frac: float = 0.1
    warmup_frac: float = 0.05
    init_value: float = 0.0


class SGDConfig(_Frozen):
    """Plain SGD (no momentum, no weight decay) with optional global-norm clipping."""

    wire_type: ClassVar[str] = "cs336_scaling.training.optimizer.SGDConfig"

    lr_scheduler: WarmupCosineDecay
    grad_clip_norm: float | None = 1.0


class AdamWConfig(_Frozen):
    """AdamW with decoupled weight decay on every parameter, optional global-norm clipping."""

    wire_type: ClassVar[str] = "cs336_scaling.training.optimizer.AdamWConfig"

    lr_scheduler: WarmupCosineDecay = Field(default_factory=WarmupCosineDecay)
    weight_decay: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    eps_root: float = 1e-8
    grad_clip_norm: float | None = 1.0


OptimizerConfig = SGDConfig | AdamWConfig
"""The untagged union; pydantic's smart mode picks SGD on a tie (spec §1.3)."""


class BasicTransformerConfig(_Frozen):
    """The architecture: all 12 fields required; ranges are checked by TrainingConfig."""

    wire_type: ClassVar[str] = "cs336_scaling.training.model.basic_model.BasicTransformerConfig"

    attention_bias: bool
    head_dim: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_hidden_layers: int
    num_key_value_heads: int
    rms_norm_eps: float
    rope_theta: int
    tie_word_embeddings: bool
    dtype: Literal["float32", "bfloat16"]
    vocab_size: int


_POSITIVE_ARCH_FIELDS = (
    "head_dim",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_hidden_layers",
    "num_key_value_heads",
    "vocab_size",
)


def architecture_error(arch: BasicTransformerConfig) -> str | None:
    """The first failing architecture check (spec §1.4 checks 4-11, exact message), or None."""
    for name in _POSITIVE_ARCH_FIELDS:
        if getattr(arch, name) <= 0:
            return f"{name} must be positive"
    if arch.hidden_size != arch.num_attention_heads * arch.head_dim:
        return "hidden_size must equal num_attention_heads * head_dim"
    if arch.num_attention_heads % arch.num_key_value_heads != 0:
        return "num_attention_heads must be divisible by num_key_value_heads"
    if arch.num_key_value_heads != arch.num_attention_heads:
        return "num_key_value_heads must equal num_attention_heads; GQA is not supported"
    if arch.head_dim % 2 != 0:
        return "head_dim must be even for RoPE"
    if arch.intermediate_size < arch.hidden_size:
        return "intermediate_size should usually >= hidden_size"
    if arch.rms_norm_eps <= 0:
        return "rms_norm_eps must be positive"
    if arch.rope_theta <= 0:
        return "rope_theta must be positive"
    return None


def cross_field_error(config: TrainingConfig) -> str | None:
    """The server's first failing cross-field check of ``config`` (its exact message), or None.

    The 17 checks of spec §1.4 in order. Comparisons are written as the server writes them
    (``x <= 0`` rejects, ``not lo <= x < hi`` rejects), so NaN passes exactly where it passes
    on the server.
    """
    opt = config.optimizer_config
    sched = opt.lr_scheduler
    tokens_per_step = SEQ_LEN * config.train_batch_size
    if config.total_train_tokens % tokens_per_step != 0:
        return "total_train_tokens must be divisible by seq_len * train_batch_size"
    if (config.total_train_tokens // tokens_per_step) % config.n_evals != 0:
        return "total optimizer steps must be divisible by n_evals"
    if N_VAL_TOKENS % (SEQ_LEN * config.val_batch_size) != 0:
        return "n_val_tokens must be divisible by seq_len * val_batch_size"
    message = architecture_error(config.architecture_config)
    if message is not None:
        return message
    if not 0 <= sched.warmup_frac < 1:
        return "warmup_frac must be in [0, 1)"
    if not 0 <= sched.final_lr_frac <= 1:
        return "final_lr_frac must be in [0, 1]"
    if sched.init_value < 0:
        return "initial learning rate must be nonnegative"
    if sched.peak_value <= 0:
        return "peak learning rate must be positive"
    if opt.grad_clip_norm is not None and opt.grad_clip_norm <= 0:
        return "grad_clip_norm must be positive or None"
    if isinstance(opt, AdamWConfig):
        if opt.weight_decay < 0:
            return "weight_decay must be nonnegative"
        if not 0 <= opt.beta1 < 1:
            return "beta1 must be in [0, 1)"
        if not 0 <= opt.beta2 < 1:
            return "beta2 must be in [0, 1)"
        if opt.eps <= 0:
            return "eps must be positive"
        if opt.eps_root < 0:
            return "eps_root must be nonnegative"
    return None


class TrainingConfig(_Frozen):
    """The body of ``POST /submit``: one training run, validated as the course server does.

    ``seq_len`` (512) and ``n_val_tokens`` (2^18) are class constants; sending them is an
    ``extra_forbidden`` error.
    """

    wire_type: ClassVar[str] = "cs336_scaling.training.training_config.TrainingConfig"
    seq_len: ClassVar[int] = SEQ_LEN
    n_val_tokens: ClassVar[int] = N_VAL_TOKENS

    architecture_config: BasicTransformerConfig
    optimizer_config: OptimizerConfig
    train_batch_size: int = Field(gt=0)
    val_batch_size: int = Field(gt=0)
    n_evals: int = Field(default=16, gt=0)
    total_train_tokens: int = Field(gt=0, le=MAX_TRAIN_TOKENS)
    max_runtime_seconds: float = Field(ge=1, le=MAX_RUNTIME_SECONDS)
    model_seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _cross_field_checks(self) -> TrainingConfig:
        message = cross_field_error(self)
        if message is not None:
            raise ValueError(message)
        return self

    @property
    def tokens_per_optimizer_step(self) -> int:
        """Tokens per optimizer step: ``seq_len * train_batch_size``."""
        return SEQ_LEN * self.train_batch_size

    @property
    def total_optimizer_steps(self) -> int:
        """Optimizer steps of the whole run."""
        return self.total_train_tokens // self.tokens_per_optimizer_step

    @property
    def eval_every_tokens(self) -> int:
        """Training tokens between two evaluations (checkpoint ``i`` is at ``(i+1)`` times this)."""
        return self.total_train_tokens // self.n_evals

    @property
    def optimizer_steps_per_eval(self) -> int:
        """Optimizer steps per chunk."""
        return self.total_optimizer_steps // self.n_evals

    @property
    def unique_id(self) -> str:
        """The duplicate key of this configuration (:func:`config_unique_id`)."""
        return config_unique_id(self)


def _typed(value: Any) -> Any:
    if isinstance(value, _Frozen):
        fields = {name: _typed(getattr(value, name)) for name in type(value).model_fields}
        return {"__type__": type(value).wire_type, "__value__": fields}
    if isinstance(value, (list, tuple)):
        return [_typed(item) for item in value]
    return value


def config_unique_id(config: TrainingConfig) -> str:
    """The server's duplicate key of a validated configuration (20 hex characters).

    A blake2s (10-byte digest) of the typed JSON of the validated model: each model becomes
    ``{"__type__": class, "__value__": {field: ...}}``, dumped with sorted keys and compact
    separators (spec §1.7). Every field counts, the optimizer's class included; values that
    validate equal (omitted default and explicit default, ``60`` and ``60.0``) give equal keys.

    Parameters
    ----------
    config : TrainingConfig
        A validated configuration.

    Returns
    -------
    str
        The key; equal for equal validated configurations.
    """
    text = json.dumps(_typed(config), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2s(text.encode(), digest_size=10).hexdigest()


class BudgetSummary(_Frozen):
    """``GET /budget``: seconds used (reservations of active runs included) and remaining."""

    used_seconds: float
    remaining_seconds: float
    total_budget_seconds: float


class SubmitResponse(_Frozen):
    """``POST /submit`` 200: the new id and the budget with the new reservation included."""

    experiment_id: int
    budget_summary: BudgetSummary


class QueuedStatus(_Frozen):
    """Waiting for a worker; the full ``max_runtime_seconds`` is reserved."""

    status_type: Literal["queued"] = "queued"
    queued_at: datetime


class RunningStatus(_Frozen):
    """Training; ``val_losses`` grows by one entry per finished chunk (starts empty)."""

    status_type: Literal["running"] = "running"
    queued_at: datetime
    dispatched_at: datetime
    run_id: str
    val_losses: list[float]


class CompletedStatus(_Frozen):
    """Finished within its runtime: ``n_evals`` validation losses, the last one final."""

    status_type: Literal["completed"] = "completed"
    queued_at: datetime
    dispatched_at: datetime
    run_id: str
    used_runtime_seconds: float
    val_losses: list[float]
    completed_at: datetime


class TimeoutReason(_Frozen):
    """Ran past ``max_runtime_seconds``: the losses of the chunks that finished."""

    reason: Literal["timeout"] = "timeout"
    partial_val_losses: list[float]


class UnexpectedReason(_Frozen):
    """Crashed (e.g. out of memory): ``"<ExceptionType>: <message>"``."""

    reason: Literal["unexpected"] = "unexpected"
    failure: str


FailureReason = Annotated[TimeoutReason | UnexpectedReason, Field(discriminator="reason")]


class FailedStatus(_Frozen):
    """Failed; a timeout's partial curve is at ``reason.partial_val_losses``."""

    status_type: Literal["failed"] = "failed"
    queued_at: datetime
    dispatched_at: datetime
    run_id: str
    used_runtime_seconds: float
    failed_at: datetime
    reason: FailureReason


ExperimentStatus = Annotated[
    QueuedStatus | RunningStatus | CompletedStatus | FailedStatus,
    Field(discriminator="status_type"),
]


class ExperimentResponse(_Frozen):
    """One experiment: its id, the stored validated config (defaults filled in), its status."""

    experiment_id: int
    training_config: TrainingConfig
    status: ExperimentStatus


class FinalSubmissionRequest(_Frozen):
    """``POST /final_submission``: the chosen configuration and its predicted final loss."""

    training_config: TrainingConfig
    predicted_final_loss: float = Field(gt=0)


class FinalSubmissionResponse(_Frozen):
    """The stored final submission (one per key; each POST replaces it)."""

    training_config: TrainingConfig
    predicted_final_loss: float
    submitted_at: datetime
