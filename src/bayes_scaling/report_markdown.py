"""report.md: the human-readable report, rendered from the report.json mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bayes_scaling.diagnostics import ESS_LIMIT, R_HAT_LIMIT
from bayes_scaling.params import CONTEXT_LENGTH, VOCAB_SIZE
from bayes_scaling.report_figures import CAPTIONS

__all__ = ["NUISANCE_LABELS", "render_markdown"]

#: Labels of the nuisance summaries of report.json's ``nuisance`` key.
NUISANCE_LABELS = {
    "a_lr": "a_lr: lr* exponent in size (lr* ∝ N_blocks^-a_lr)",
    "b_lr": "b_lr: lr* exponent in tokens (lr* ∝ D^-b_lr)",
    "c_bs": "c_bs: lr* exponent in batch size (lr* ∝ batch^c_bs)",
    "lr_star_1e7": "lr* at 1e7 block parameters",
    "lam": "lam: weight of embedding-side params in N_eff",
    "omega": "omega: weight of embedding-side params in D",
}


def _g(x: float) -> str:
    return f"{x:.4g}"


def _interval(summary: Mapping[str, Any], fmt: Callable[[float], str] = _g) -> str:
    lo50, hi50 = summary["ci50"]
    lo90, hi90 = summary["ci90"]
    return (f"{fmt(summary['median'])} (50%: {fmt(lo50)}–{fmt(hi50)}; "
            f"90%: {fmt(lo90)}–{fmt(hi90)})")


def render_markdown(report: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    """report.md: the answer first, then the optimum, the posterior, diagnostics and warnings."""
    rec = report["recommended"]
    n_opt, d_opt = report["n_opt"], report["d_opt"]
    internal = str(report.get("law_units", "")).startswith("internal")
    generic = str(report.get("law_units", "")).startswith("source")
    n_unit = "parameters (the data's convention)" if generic else "non-embedding parameters"
    lines = [
        f"# Scaling-law report: target {report['target_flops']:.3g} FLOPs",
        "",
        "## Answer",
        "",
        _answer(report),
        "",
        *_gap_lines(report),
        *_api2026_lines(report),
        *_settings_lines(rec),
        f"Compute-optimal at the target: N_opt = **{n_opt['median']:.3g}** {n_unit} "
        f"(90%: {n_opt['ci90'][0]:.3g}–{n_opt['ci90'][1]:.3g}), D_opt = "
        f"**{d_opt['median']:.3g}** tokens (90%: {d_opt['ci90'][0]:.3g}–"
        f"{d_opt['ci90'][1]:.3g}).",
        "",
        f"Shape rule: {report.get('shape_rule', 'n/a')}.",
        "",
        "## Compute-optimal allocation at the target",
        "",
        "Median (50% and 90% equal-tailed intervals). " + (
            "N and D in the data's own convention (generic rows: the file's parameter and "
            "token counts); the recommended shape treats N_opt as a non-embedding count, "
            "which is only as right as that match." if generic else
            "Package convention: N = non-embedding parameters of the reference model (output "
            "head included, token and position embeddings excluded), D = C / (6 N)."
            if "param_count_model" not in report else
            f"N = {report['param_count_model']}; D = C / (6 N), for a 2026 run exactly its "
            "total_train_tokens."),
        "",
        "| quantity | posterior |",
        "|---|---|",
        f"| N_opt (parameters) | {_interval(n_opt)} |",
        f"| D_opt (tokens) | {_interval(d_opt)} |",
        f"| loss at the optimum (model mean) | {_interval(report['loss_opt'])} |",
        "",
        "## Law parameters",
        "",
        "L(N, D) = E + A / N^alpha + B / D^beta (plus the model's nuisance terms).",
        "",
    ]
    if internal:
        lines += [
            "**Units.** These are in the model's *internal* effective sizes, not the package's "
            "N and D: N_eff = N_blocks + lam · N_emb and D = C / (6 (N_blocks + omega · "
            "N_emb)), with N_blocks the transformer blocks and final LayerNorm and N_emb = "
            f"2 · {VOCAB_SIZE} · d + {CONTEXT_LENGTH} · d (token and position embeddings and "
            "the output head). "
            "A and B are therefore not comparable with published fits as they stand; N_opt, "
            "D_opt and the recommendation above are converted to the package's convention.",
            "",
        ]
    else:
        lines += ["Units: the N and D of the fitted rows (the source's convention).", ""]
    lines += ["| parameter | median | 90% interval |", "|---|---|---|"]
    for name, summary in report["posterior"].items():
        lo, hi = summary["ci90"]
        lines.append(f"| {name} | {_g(summary['median'])} | {_g(lo)} – {_g(hi)} |")
    nuisance = report.get("nuisance") or {}
    if nuisance:
        lines += ["", "Nuisance parameters that move the recommendation:", "",
                  "| parameter | median | 90% interval |", "|---|---|---|"]
        for name, summary in nuisance.items():
            lo, hi = summary["ci90"]
            lines.append(f"| {NUISANCE_LABELS.get(name, name)} | {_g(summary['median'])} | "
                         f"{_g(lo)} – {_g(hi)} |")
    diag = report["diagnostics"]
    criterion = _criterion(report)
    lines += [
        "",
        "## Data and diagnostics",
        "",
        f"- runs: {report['n_runs']} ({report.get('runs_description', '')})"
        + (f"; source: {report['backend']}" if report.get("backend") else ""),
        f"- strategy: {report['strategy']}"
        + (f" (acquisition criterion {criterion})" if criterion else "")
        + f"; FLOPs used {report['flops_used']:.3g} of a budget of {report['budget_flops']:.3g}",
        f"- r_hat_max = {_opt(diag['r_hat_max'], '.3f')} (want ≤ {R_HAT_LIMIT}), "
        f"ess_bulk_min = {_opt(diag['ess_bulk_min'], '.0f')} (want ≥ {ESS_LIMIT}), "
        f"ess_tail_min = {_opt(report.get('ess_tail_min'), '.0f')}, "
        f"divergences = {diag['divergences']}",
    ]
    ppc = report.get("ppc")
    if ppc:
        lines.append(f"- posterior predictive check: {ppc['coverage90']:.0%} of the runs inside "
                     f"their 90% predictive interval (in-sample; want about 90%)")
    if "design_efficiency" in report:
        split = report["oracle_design"]["budget_fraction_by_flops"]
        lines.append(
            f"- design efficiency {report['design_efficiency']:.2f}: the optimal design for this "
            f"budget (every run priced at least {report['oracle_design']['floor_flops']:.2g} "
            f"FLOPs; budget split {', '.join(f'{k}: {v:.2f}' for k, v in split.items())}) "
            f"reaches an sd of ln N_opt of {report['oracle_sd_ln_n_opt']:.3g}, the runs bought "
            f"{report['achieved_sd_ln_n_opt']:.3g} (both linearised at the final posterior, "
            f"whose draws give {report['posterior_sd_ln_n_opt']:.3g})"
            + ("; the yardstick scores ln N_opt alone, and the decision criterion also buys "
               "runs for the learning rate and the loss, so it sits below 1 by design"
               if criterion == "decision" else ""))
    lines.append("")
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    if figures:
        lines += ["## Figures", ""]
        for key, path in figures.items():
            caption = CAPTIONS.get(key, key)
            lines += [f"![{key}]({path})", "", f"*{caption}.*", ""]
    return "\n".join(lines)


def _answer(report: Mapping[str, Any]) -> str:
    rec = report["recommended"]
    loss = rec["predicted_loss"]
    tail = (f"Predicted final loss **{loss['median']:.3f}** (90% interval "
            f"{loss['ci90'][0]:.3f}–{loss['ci90'][1]:.3f}{_law_only(rec)}).")
    if "d_model" not in rec:
        return (f"Train a model of **{rec['non_embedding_params']:.4g} parameters** (the data's "
                f"convention) on **{rec['tokens']:.4g} tokens**. {tail} The fitted rows give "
                "only sizes, tokens and losses, so no architecture, batch size or learning "
                "rate is recommended.")
    return (f"Train **d_model = {rec['d_model']}, num_layers = {rec['num_layers']}, num_heads = "
            f"{rec['num_heads']}**, batch size {rec['batch_size']}, learning rate "
            f"{rec['learning_rate']:.3g} ({report.get('learning_rate_source', 'posterior')}), "
            f"on {rec['tokens']:.3g} tokens "
            f"({rec['non_embedding_params']:,} non-embedding parameters, "
            f"{rec['total_params']:,} total). {tail}")


def _law_only(rec: Mapping[str, Any]) -> str:
    """``'; 2.98–3.03 from ... alone'``: the interval without noise and discrepancy, if given."""
    law = rec.get("predicted_loss_law_only")
    if law is None:
        return ""
    return (f"; {law['ci90'][0]:.3f}–{law['ci90'][1]:.3f} from the law's parameter uncertainty "
            "alone, the rest is the run noise and the extrapolation discrepancy beyond the runs")


def _gap_lines(report: Mapping[str, Any]) -> list[str]:
    """One sentence: what the nats between the predicted loss and the optimum's loss are."""
    gap = report["recommended"].get("gap_to_optimum")
    if not gap:
        return []
    text = (f"Of the {gap['total']:.3f} nats between the predicted loss "
            f"({gap['predicted_loss_median']:.3f}) and the compute-optimal loss at the target "
            f"({gap['loss_opt_median']:.3f}), ")
    if gap["capped"]:
        source = str(report.get("learning_rate_source", ""))
        where = ("at the explored maximum" if source.endswith("maximum") else
                 "at the explored minimum" if source.endswith("minimum") else
                 "to the explored range")
        other = gap["uncapped"]
        text += (f"{gap['learning_rate_cap']:.3f} is the learning-rate cap {where} (at this shape "
                 f"the posterior's best learning rate is {gap['free_learning_rate']:.3g}; lift "
                 f"the cap with --lr-beyond-explored) and {gap['shape_under_cap']:.3f} the shape "
                 f"the cap moved to (without it: d_model {other['d_model']}, "
                 f"{other['num_layers']} layers, learning rate {other['learning_rate']:.3g}), "
                 "both what the model extrapolates beyond the learning rates the runs tried; ")
    text += (f"{gap['one_configuration']:.3f} is one configuration for every posterior draw, "
             "where the optimum lets each draw take its own best shape, batch and learning rate "
             f"(the cost of not knowing them); {gap['median_vs_mean']:.3f} is medians against "
             "means.")
    return [text, ""]


def _api2026_lines(report: Mapping[str, Any]) -> list[str]:
    """A 2026 run: which count N is, and how the knobs the law has no term for were chosen."""
    if report.get("api") != "2026":
        return []
    lines = [f"Counts: every N here (N_opt, the runs', the recommendation's) is the "
             f"{report.get('param_count_model', 'non-embedding count')}; the recommended "
             "configuration's own count is its architecture's (final_training_config.json).", ""]
    choices = report.get("residual_choices") or {}
    if choices:
        picked = ", ".join(f"{name} = {choices[name]}" for name in
                           ("head_dim", "intermediate_ratio", "warmup_frac") if name in choices)
        lines += [f"Chosen from the completed runs' residuals (the law has no term for them "
                  f"beyond the parameter count): {picked}.", ""]
    choice = report.get("target_choice") or {}
    if choice:
        lines += [f"Chosen among {choice['n_candidates']} (shape, batch) candidates, each at the "
                  f"tokens that fill {report.get('target_hours', 48):g} B200-hours at its own "
                  "predicted throughput (one sd on the safe side), by posterior expected loss; "
                  f"memory guard: {choice['n_out_of_memory']} candidates need more than the "
                  f"B200's {choice['memory_capacity']:.3g} bytes and were excluded; the "
                  f"recommendation needs {choice['memory_bytes']:.3g} bytes.", ""]
        excluded = choice.get("excluded_best")
        if excluded:
            # reports before the rename called the score "expected_loss"
            score = excluded.get("target_score", excluded.get("expected_loss"))
            lines += [f"**The memory guard removed the unconstrained optimum**: hidden_size "
                      f"{excluded['hidden_size']}, {excluded['num_layers']} layers, batch "
                      f"{excluded['batch_size']} (score exp E ln loss {score:.4f}) "
                      f"needs {excluded['memory_bytes']:.3g} bytes.", ""]
    return lines


def _settings_lines(rec: Mapping[str, Any]) -> list[str]:
    """The posterior's intervals of its choices, then every value outside the explored range."""
    lines = []
    names = [k[: -len("_ci90")] for k in rec if k.endswith("_ci90")]
    if names:
        lines += ["What the posterior chooses (50% and 90% intervals over the draws; "
                  "learning_rate: the optimal learning rate of the recommended shape and batch; "
                  "the others: each draw's own optimum at the target):", ""]
        for name in names:
            lo50, hi50 = rec[f"{name}_ci50"]
            lo90, hi90 = rec[f"{name}_ci90"]
            lines.append(f"- {name}: 50% {_g(lo50)}–{_g(hi50)}, 90% {_g(lo90)}–{_g(hi90)}")
        lines.append("")
    flags = rec.get("outside_explored") or []
    if flags:
        lines += ["**Outside the explored range** (the fitted runs never tried these; the "
                  "values are extrapolations of the model):", ""]
        for flag in flags:
            lo, hi = flag["explored"]
            lines.append(f"- ⚠ {flag['name']} = {_g(flag['value'])} is {flag['factor']:.2g}x "
                         f"{flag['side']} the explored {_g(lo)}–{_g(hi)}")
        lines.append("")
    return lines


def _criterion(report: Mapping[str, Any]) -> str | None:
    """The acquisition criterion of an active run of `run`; None for anything else."""
    if report.get("strategy") != "active":
        return None
    return report.get("loop", {}).get("settings", {}).get("criterion")


def _opt(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)
