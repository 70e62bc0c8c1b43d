"""The 2026 API's pydantic models: union trap, cross-field messages and order, duplicate key."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from api2026_configs import CROSS_FIELD_CASES, apply_changes, notebook_body, with_path
from bayes_scaling.api2026.schemas import (
    AdamWConfig,
    ExperimentResponse,
    FinalSubmissionRequest,
    SGDConfig,
    TrainingConfig,
    config_unique_id,
)


def _errors(body):
    with pytest.raises(ValidationError) as info:
        TrainingConfig.model_validate_json(json.dumps(body))
    return info.value.errors()


@pytest.mark.parametrize(("changes", "message"), CROSS_FIELD_CASES)
def test_each_cross_field_check_gives_the_servers_message(changes, message):
    (error,) = _errors(apply_changes(notebook_body(), changes))
    assert error["type"] == "value_error"
    assert error["loc"] == ()
    assert error["msg"] == f"Value error, {message}"


def test_the_first_failing_check_is_reported():
    # Check 1 (tokens) and check 17 (eps) both fail: the first is reported.
    body = apply_changes(notebook_body(), dict(CROSS_FIELD_CASES[0][0]) | {
        ("optimizer_config", "eps"): 0.0})
    assert _errors(body)[0]["msg"].endswith(CROSS_FIELD_CASES[0][1])
    # Cross-field checks run only after every per-field check passed.
    body = with_path(body, ("train_batch_size",), 0)
    (error,) = _errors(body)
    assert error["type"] == "greater_than" and error["loc"] == ("train_batch_size",)


def test_sgd_skips_the_adamw_checks_and_the_union_picks_as_the_server_does():
    sched = {"peak_value": 1e-2}
    assert isinstance(_opt({"lr_scheduler": sched}), SGDConfig)
    assert isinstance(_opt({"lr_scheduler": sched, "grad_clip_norm": None}), SGDConfig)
    assert isinstance(_opt({}), AdamWConfig)
    assert isinstance(_opt({"grad_clip_norm": None}), AdamWConfig)
    assert isinstance(_opt({"lr_scheduler": sched, "beta1": 0.8}), AdamWConfig)


def _opt(optimizer):
    return TrainingConfig.model_validate(notebook_body(optimizer_config=optimizer)).optimizer_config


@pytest.mark.parametrize(
    ("path", "value", "kind"),
    [
        (("seq_len",), 512, "extra_forbidden"),
        (("n_val_tokens",), 262144, "extra_forbidden"),
        (("architecture_config", "dtype"), "float16", "literal_error"),
        (("max_runtime_seconds",), 43201, "less_than_equal"),
        (("max_runtime_seconds",), 0.5, "greater_than_equal"),
        (("total_train_tokens",), 500_000_000_001, "less_than_equal"),
        (("model_seed",), -1, "greater_than_equal"),
        (("architecture_config", "rope_theta"), 31622.7, "int_from_float"),
    ],
)
def test_field_errors(path, value, kind):
    assert _errors(with_path(notebook_body(), path, value))[0]["type"] == kind


def test_unique_id_matches_the_specs_test_vectors():
    assert TrainingConfig.model_validate(notebook_body()).unique_id == "dd68c5ba1603e4908728"
    body = notebook_body(total_train_tokens=1048576, max_runtime_seconds=30)
    assert config_unique_id(TrainingConfig.model_validate(body)) == "f4f2366951d3d154db4f"


def test_unique_id_equal_for_equal_validated_values_and_different_otherwise():
    base = TrainingConfig.model_validate(notebook_body()).unique_id
    same = [
        notebook_body(optimizer_config={"beta1": 0.9}, max_runtime_seconds=60),
        with_path(notebook_body(), ("architecture_config", "rope_theta"), 1e6),
        {k: v for k, v in notebook_body().items() if k not in ("n_evals", "model_seed")},
    ]
    for body in same:
        assert TrainingConfig.model_validate_json(json.dumps(body)).unique_id == base
    sgd = notebook_body(optimizer_config={"lr_scheduler": {}})
    different = [notebook_body(max_runtime_seconds=61), notebook_body(model_seed=1), sgd]
    ids = {TrainingConfig.model_validate(b).unique_id for b in different}
    assert len(ids) == 3 and base not in ids


def test_response_models_round_trip():
    config = notebook_body()
    failed = {
        "experiment_id": 3,
        "training_config": config,
        "status": {
            "status_type": "failed",
            "queued_at": "2026-04-29T23:46:36.972380Z",
            "dispatched_at": "2026-04-29T23:46:38Z",
            "run_id": "sim-3",
            "used_runtime_seconds": 61.0,
            "failed_at": "2026-04-29T23:47:40Z",
            "reason": {"reason": "timeout", "partial_val_losses": [9.6, 9.1]},
        },
    }
    parsed = ExperimentResponse.model_validate_json(json.dumps(failed))
    assert parsed.status.reason.partial_val_losses == [9.6, 9.1]
    dumped = json.loads(parsed.model_dump_json())
    assert dumped["status"]["dispatched_at"] == "2026-04-29T23:46:38Z"
    assert dumped["status"]["queued_at"] == "2026-04-29T23:46:36.972380Z"
    with pytest.raises(ValidationError):
        FinalSubmissionRequest.model_validate(
            {"training_config": config, "predicted_final_loss": 0}
        )
