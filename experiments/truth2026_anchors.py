"""Anchors of the 2026 simulator's default truth, for docs/api2026_simulator.md.

Evaluates the default :class:`~bayes_scaling.simulator.truth2026.Truth2026` on (1) the spec's one
published run (the notebook configuration: 51,389,888 parameters, 8,388,608 tokens, final
validation loss 7.189 from 9.625, 10.18 s), (2) the compute-optimal configuration of a
48-B200-hour run found by a grid search over width, depth and batch size (AdamW at the truth's
optimal learning rate, f = 8d/3, head dim 128, tokens filling the time), and (3) the learning-rate,
batch-size, optimizer and schedule effects on one mid-size configuration. Writes a Markdown table.

Usage::

    python experiments/truth2026_anchors.py [--hours 48] [--coarse] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.files import atomic_write_text
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.simulator.truth2026 import (
    Truth2026,
    chunk_seconds,
    mean_curve,
    memory_bytes,
    observed_curve,
    optimal_learning_rate_2026,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "truth2026_anchors.md"

NOTEBOOK = {
    "architecture_config": {
        "attention_bias": False, "head_dim": 64, "hidden_size": 448, "intermediate_size": 1280,
        "num_attention_heads": 7, "num_hidden_layers": 9, "num_key_value_heads": 7,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000, "tie_word_embeddings": False,
        "dtype": "bfloat16", "vocab_size": 32000,
    },
    "optimizer_config": {
        "lr_scheduler": {"peak_value": 3e-4, "final_lr_frac": 0.1, "warmup_frac": 0.05,
                         "init_value": 0.0},
        "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "eps_root": 1e-8,
        "grad_clip_norm": 1.0,
    },
    "train_batch_size": 128, "val_batch_size": 32, "n_evals": 16,
    "total_train_tokens": 8388608, "max_runtime_seconds": 60.0, "model_seed": 0,
}


def config(d, layers, batch, tokens, lr=3e-4, *, final_frac=0.1, sgd=False, head_dim=128):
    """A TrainingConfig of the given shape (f = 8d/3 rounded to 64) on the notebook's recipe."""
    body = copy.deepcopy(NOTEBOOK)
    heads = d // head_dim
    body["architecture_config"].update(
        hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, head_dim=head_dim,
        intermediate_size=max(d, round(8 * d / 3 / 64) * 64),
    )
    body.update(train_batch_size=batch, total_train_tokens=tokens, max_runtime_seconds=43200)
    if sgd:
        body["optimizer_config"] = {"lr_scheduler": {"peak_value": lr}}
    else:
        body["optimizer_config"]["lr_scheduler"].update(peak_value=lr, final_lr_frac=final_frac)
    return TrainingConfig.model_validate(body)


def fill_tokens(truth, d, layers, batch, seconds):
    """The most tokens (a multiple of 512 * batch * 16) whose run fits in ``seconds``."""
    unit = 512 * batch * 16
    probe = config(d, layers, batch, unit * 64)
    per_unit = chunk_seconds(truth, probe) * 16 / 64
    units = int(seconds / per_unit)
    while units > 0 and chunk_seconds(truth, config(d, layers, batch, unit * units)) * 16 > seconds:
        units -= 1
    return unit * units


def at_optimal_lr(truth, d, layers, batch, tokens, **kw):
    lr = optimal_learning_rate_2026(truth, config(d, layers, batch, tokens))
    return config(d, layers, batch, tokens, lr, **kw)


def compute_optimal(truth, seconds, coarse):
    widths = [1024, 2048] if coarse else [768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 3072]
    depths = [12, 24] if coarse else [8, 12, 16, 20, 24, 28, 32, 40]
    batches = [256] if coarse else [128, 256, 512, 1024]
    best = None
    for d in widths:
        for layers in depths:
            for batch in batches:
                tokens = fill_tokens(truth, d, layers, batch, seconds)
                if tokens == 0:
                    continue
                cfg = at_optimal_lr(truth, d, layers, batch, tokens)
                if memory_bytes(truth, cfg) > truth.memory_bytes:
                    continue
                loss = float(mean_curve(truth, cfg)[-1])
                if best is None or loss < best[0]:
                    best = (loss, cfg)
    return best


def main(argv: Sequence[str] | None = None) -> str:
    """Compute the anchors, write the table, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0, help="target run (B200-hours)")
    parser.add_argument("--coarse", action="store_true", help="tiny grid (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    truth = Truth2026()
    nb = TrainingConfig.model_validate(NOTEBOOK)
    curve = observed_curve(truth, nb)
    lines = [
        "# 2026 simulator: anchors of the default truth",
        "",
        "Written by `experiments/truth2026_anchors.py` (default truth, "
        "`data/truth2026_default.json`).",
        "",
        "| anchor | simulator | spec / target |",
        "|---|---|---|",
        f"| notebook run: params | {count_params_2026(nb.architecture_config).total:,} "
        "| 51,389,888 |",
        f"| notebook run: first val loss | {curve[0]:.4f} | 9.625 |",
        f"| notebook run: final val loss | {curve[-1]:.4f} | 7.189 |",
        f"| notebook run: used_runtime_seconds | {chunk_seconds(truth, nb) * 16:.2f} | 10.18 |",
    ]
    best = compute_optimal(truth, args.hours * 3600, args.coarse)
    loss, cfg = best
    arch = cfg.architecture_config
    n = count_params_2026(arch)
    lines += [
        f"| compute-optimal {args.hours:g}-h run: final val loss | {loss:.3f} | about 3 |",
        f"| ... its shape (d, L, f, batch) | {arch.hidden_size}, {arch.num_hidden_layers}, "
        f"{arch.intermediate_size}, {cfg.train_batch_size} | |",
        f"| ... non-embedding params, tokens | {n.non_embedding:.3g}, "
        f"{cfg.total_train_tokens:.3g} | |",
        f"| ... peak learning rate | {cfg.optimizer_config.lr_scheduler.peak_value:.3g} | |",
        "",
        "Effects on one configuration (d 768, 12 layers, batch 256, 420M tokens), final mean loss:",
        "",
        "| variant | final loss |",
        "|---|---|",
    ]
    tokens = 512 * 256 * 16 * 200
    base = at_optimal_lr(truth, 768, 12, 256, tokens, head_dim=64)
    eta = base.optimizer_config.lr_scheduler.peak_value
    variants = [("AdamW at eta*", base)]
    for factor in (0.1, 0.3, 3.0, 10.0):
        variants.append((f"peak lr = {factor:g} eta*",
                         config(768, 12, 256, tokens, eta * factor, head_dim=64)))
    variants.append(("constant lr (final_lr_frac 1)",
                     config(768, 12, 256, tokens, eta, final_frac=1.0, head_dim=64)))
    for lr in (0.1, 0.3, 1.0):
        variants.append((f"SGD, lr {lr:g}", config(768, 12, 256, tokens, lr, sgd=True,
                                                    head_dim=64)))
    for batch in (64, 1024):
        variants.append((f"batch {batch}", at_optimal_lr(truth, 768, 12, batch, tokens,
                                                         head_dim=64)))
    for name, cfg in variants:
        lines.append(f"| {name} | {float(mean_curve(truth, cfg)[-1]):.3f} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(args.out, table)
    return table


if __name__ == "__main__":
    sys.stdout.write(main())
