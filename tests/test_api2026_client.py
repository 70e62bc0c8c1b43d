"""The 2026 client: header key, validation before sending, the union trap, typed errors, retries."""

from __future__ import annotations

import logging

import pytest

from api2026_configs import CROSS_FIELD_CASES, apply_changes, notebook_body
from bayes_scaling.api2026.client import JobsApiClient, detect_api, validate_training_config
from bayes_scaling.api2026.schemas import AdamWConfig, SGDConfig
from bayes_scaling.candidates2026 import training_config
from bayes_scaling.errors import (
    ApiAuthError,
    ApiUnreachableError,
    ApiValidationError,
    BudgetExceededError,
    DuplicateExperimentError,
    ExperimentNotFoundError,
    InvalidApiKeyError,
)
from jobs_standin import StandIn
from live_server import free_port, serve_in_thread

SECRET = "k1"


@pytest.fixture()
def standin():
    server = StandIn(keys=(SECRET, "other"), budget=1000.0, time_scale=1e6)
    with serve_in_thread(server.app) as url:
        yield server, url


def test_key_from_env_never_in_repr_or_logs(standin, monkeypatch, caplog):
    server, url = standin
    monkeypatch.setenv("BAYES_SCALING_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    client = JobsApiClient(url)
    assert SECRET not in repr(client) and "***" in repr(client)
    client.submit(notebook_body())
    client.experiments()
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    monkeypatch.delenv("BAYES_SCALING_API_KEY")
    with pytest.raises(InvalidApiKeyError):
        JobsApiClient(url)


@pytest.mark.parametrize(("changes", "message"), CROSS_FIELD_CASES)
def test_invalid_config_refused_locally_with_the_server_message(standin, changes, message):
    server, url = standin
    client = JobsApiClient(url, SECRET)
    with pytest.raises(ApiValidationError) as info:
        client.submit(apply_changes(notebook_body(), changes))
    assert info.value.errors[0]["msg"] == f"Value error, {message}"
    assert info.value.errors[0]["loc"] == ["body"]
    assert server.submits == 0


def test_field_errors_carry_the_field_path():
    with pytest.raises(ApiValidationError) as info:
        validate_training_config(notebook_body(train_batch_size=0, seq_len=512))
    locs = {tuple(e["loc"]): e["type"] for e in info.value.errors}
    assert locs[("body", "train_batch_size")] == "greater_than"
    assert locs[("body", "seq_len")] == "extra_forbidden"


def test_every_adamw_field_is_sent_and_the_server_stores_adamw(standin):
    server, url = standin
    cfg = training_config(hidden_size=256, num_layers=2, head_dim=64, intermediate_size=704,
                          peak_learning_rate=1e-3, warmup_frac=0.0, batch_size=64,
                          tokens=2e6, max_runtime_seconds=30)
    sent = cfg.model_dump(mode="json")["optimizer_config"]
    assert set(sent) == {"lr_scheduler", "weight_decay", "beta1", "beta2", "eps", "eps_root",
                         "grad_clip_norm"}
    client = JobsApiClient(url, SECRET)
    exp_id = client.submit(cfg).experiment_id
    stored = client.experiment(exp_id).training_config
    assert isinstance(stored.optimizer_config, AdamWConfig)
    assert stored.unique_id == cfg.unique_id
    # the trap itself: a scheduler-only optimizer body is SGD on both sides
    body = notebook_body(optimizer_config={"lr_scheduler": {"peak_value": 1e-3}})
    assert isinstance(validate_training_config(body).optimizer_config, SGDConfig)


def test_typed_errors(standin):
    server, url = standin
    client = JobsApiClient(url, SECRET)
    first = client.submit(notebook_body())
    with pytest.raises(DuplicateExperimentError):
        client.submit(notebook_body())
    with pytest.raises(BudgetExceededError) as info:
        client.submit(notebook_body(max_runtime_seconds=43200.0))
    assert info.value.budget_summary["total_budget_seconds"] == 1000.0
    with pytest.raises(ExperimentNotFoundError):
        JobsApiClient(url, "other").experiment(first.experiment_id)
    with pytest.raises(ApiAuthError):
        JobsApiClient(url, "nobody").budget()
    with pytest.raises(ApiValidationError) as info:  # the server's own 422 list
        client._request("POST", "/submit", json={"train_batch_size": 1})
    assert any(e["type"] == "missing" for e in info.value.errors)
    assert client.final_submission() is None
    stored = client.submit_final(notebook_body(), 3.5)
    assert client.final_submission().predicted_final_loss == stored.predicted_final_loss == 3.5


def test_retries_5xx_and_gives_up_on_a_dead_port(standin):
    server, url = standin
    server.fail_next = 1  # the first POST creates the experiment, then answers 503
    client = JobsApiClient(url, SECRET, backoff=0.01)
    with pytest.raises(DuplicateExperimentError):  # the retry finds it: 409, "fetch it"
        client.submit(notebook_body())
    assert server.submits == 2 and len(server.rows) == 1
    dead = JobsApiClient(f"http://127.0.0.1:{free_port()}", SECRET, max_retries=2, backoff=0.01)
    with pytest.raises(ApiUnreachableError):
        dead.budget()


def test_detect_api(standin):
    from bayes_scaling.simulator.server import create_app
    from bayes_scaling.simulator.store import RunStore
    from bayes_scaling.simulator.truth import load_truth

    _, url = standin
    assert detect_api(url, SECRET) == "2026"
    assert detect_api(url, "nobody") == "2026"
    app = create_app(load_truth(None), store=RunStore(":memory:"), allowed_keys=["a"],
                     budget_flops=2e18)
    with serve_in_thread(app) as old:
        assert detect_api(old, "a") == "2025"
