"""Request bodies of the 2026 API used by several test modules (the spec's notebook config)."""

from __future__ import annotations

import copy
from typing import Any

NOTEBOOK_ARCH: dict[str, Any] = {
    "attention_bias": False,
    "head_dim": 64,
    "hidden_size": 448,
    "intermediate_size": 1280,
    "num_attention_heads": 7,
    "num_hidden_layers": 9,
    "num_key_value_heads": 7,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
    "dtype": "bfloat16",
    "vocab_size": 32000,
}
ADAMW_FULL: dict[str, Any] = {
    "lr_scheduler": {
        "peak_value": 3e-4,
        "final_lr_frac": 0.1,
        "warmup_frac": 0.05,
        "init_value": 0.0,
    },
    "weight_decay": 0.01,
    "beta1": 0.9,
    "beta2": 0.95,
    "eps": 1e-8,
    "eps_root": 1e-8,
    "grad_clip_norm": 1.0,
}


def notebook_body(**overrides: Any) -> dict[str, Any]:
    """The spec's notebook configuration (unique id dd68c5ba1603e4908728), with overrides."""
    body = {
        "architecture_config": copy.deepcopy(NOTEBOOK_ARCH),
        "optimizer_config": copy.deepcopy(ADAMW_FULL),
        "train_batch_size": 128,
        "val_batch_size": 32,
        "n_evals": 16,
        "total_train_tokens": 8388608,
        "max_runtime_seconds": 60.0,
        "model_seed": 0,
    }
    body.update(overrides)
    return body


def with_path(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the nested key ``path`` set to ``value``."""
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


A = "architecture_config"
OPT = "optimizer_config"
S = (OPT, "lr_scheduler")

# (changes {path: value}, exact message) for each cross-field check, in the spec's order (§1.4).
CROSS_FIELD_CASES: list[tuple[dict[tuple[str, ...], Any], str]] = [
    ({("total_train_tokens",): 8388608 + 512},
     "total_train_tokens must be divisible by seq_len * train_batch_size"),
    ({("total_train_tokens",): 512 * 128 * 15},
     "total optimizer steps must be divisible by n_evals"),
    ({("val_batch_size",): 3}, "n_val_tokens must be divisible by seq_len * val_batch_size"),
    ({(A, "head_dim"): 0}, "head_dim must be positive"),
    ({(A, "hidden_size"): -448}, "hidden_size must be positive"),
    ({(A, "intermediate_size"): 0}, "intermediate_size must be positive"),
    ({(A, "num_attention_heads"): 0}, "num_attention_heads must be positive"),
    ({(A, "num_hidden_layers"): 0}, "num_hidden_layers must be positive"),
    ({(A, "num_key_value_heads"): 0}, "num_key_value_heads must be positive"),
    ({(A, "vocab_size"): 0}, "vocab_size must be positive"),
    ({(A, "hidden_size"): 512}, "hidden_size must equal num_attention_heads * head_dim"),
    ({(A, "num_key_value_heads"): 2},
     "num_attention_heads must be divisible by num_key_value_heads"),
    ({(A, "num_key_value_heads"): 1},
     "num_key_value_heads must equal num_attention_heads; GQA is not supported"),
    ({(A, "head_dim"): 63, (A, "hidden_size"): 441}, "head_dim must be even for RoPE"),
    ({(A, "intermediate_size"): 447}, "intermediate_size should usually >= hidden_size"),
    ({(A, "rms_norm_eps"): 0.0}, "rms_norm_eps must be positive"),
    ({(A, "rope_theta"): 0}, "rope_theta must be positive"),
    ({(*S, "warmup_frac"): 1.0}, "warmup_frac must be in [0, 1)"),
    ({(*S, "final_lr_frac"): 1.5}, "final_lr_frac must be in [0, 1]"),
    ({(*S, "init_value"): -1e-5}, "initial learning rate must be nonnegative"),
    ({(*S, "peak_value"): 0.0}, "peak learning rate must be positive"),
    ({(OPT, "grad_clip_norm"): 0.0}, "grad_clip_norm must be positive or None"),
    ({(OPT, "weight_decay"): -0.1}, "weight_decay must be nonnegative"),
    ({(OPT, "beta1"): 1.0}, "beta1 must be in [0, 1)"),
    ({(OPT, "beta2"): -0.1}, "beta2 must be in [0, 1)"),
    ({(OPT, "eps"): 0.0}, "eps must be positive"),
    ({(OPT, "eps_root"): -1e-9}, "eps_root must be nonnegative"),
]


def apply_changes(body: dict[str, Any], changes: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """``body`` with every ``{path: value}`` of ``changes`` applied (a deep copy)."""
    for path, value in changes.items():
        body = with_path(body, path, value)
    return body
