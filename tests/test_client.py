"""The HTTP client against tiny scripted servers: retries, typed errors, the key kept secret."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.errors import (
    ApiUnreachableError,
    BudgetExceededError,
    InvalidApiKeyError,
    InvalidConfigError,
)
from bayes_scaling.space import RunConfig
from live_server import free_port

SECRET = "sk-SECRET-1234567890"
CONFIG = RunConfig(
    d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=5e-4, train_flops=10**15
)


@contextmanager
def scripted_server(responses, delay: float = 0.0):
    """Serve ``responses`` (status, JSON body) in order, the last one repeated; record paths."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            status, body = responses[min(len(seen) - 1, len(responses) - 1)]
            if delay:
                time.sleep(delay)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _client(url, **kwargs):
    return TrainingApiClient(url, SECRET, **{"timeout": 5, "max_retries": 3, "backoff": 0.01,
                                             **kwargs})


def _assert_secret_hidden(exc: BaseException, caplog) -> None:
    text = "".join(traceback.format_exception(exc)) + str(exc) + repr(exc)
    assert SECRET not in text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    assert SECRET not in caplog.text


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def test_500_then_200_gives_one_result(caplog):
    good = {"loss": 4.25, "total_flops_used": 1e15}
    with scripted_server([(500, {"message": "boom"}), (503, {}), (200, good)]) as (url, seen):
        assert _client(url).loss(CONFIG) == (4.25, 1e15)
    assert len(seen) == 3
    assert all(path.startswith("/loss?") for path in seen)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert "api_key=***" in caplog.text  # urllib3's debug lines carry the URL: redacted
    assert SECRET not in caplog.text


def test_404_is_not_retried_and_keeps_the_api_message(caplog):
    message = "num_layers must be in range [2, 24], got 99"
    with scripted_server([(404, {"message": message})]) as (url, seen):
        with pytest.raises(InvalidConfigError) as excinfo:
            _client(url).loss(CONFIG)
    assert len(seen) == 1
    assert str(excinfo.value) == message
    _assert_secret_hidden(excinfo.value, caplog)


def test_422_is_invalid_key_without_the_key(caplog):
    body = {"message": f"Invalid API key provided: {SECRET}"}
    with scripted_server([(422, body)]) as (url, seen):
        with pytest.raises(InvalidApiKeyError) as excinfo:
            _client(url).total_flops_used()
    assert len(seen) == 1
    assert "Invalid API key provided: ***" in str(excinfo.value)
    _assert_secret_hidden(excinfo.value, caplog)


def test_budget_refusal_is_typed_and_not_retried(caplog):
    body = {"message": "Query would exceed the FLOPs budget; nothing was charged"}
    with scripted_server([(400, body)]) as (url, seen):
        with pytest.raises(BudgetExceededError):
            _client(url).loss(CONFIG)
    assert len(seen) == 1


def test_connection_refused_is_unreachable_after_retries(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiUnreachableError) as excinfo:
        _client(url, max_retries=2).previous_runs()
    assert "3 attempt(s)" in str(excinfo.value)
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2
    _assert_secret_hidden(excinfo.value, caplog)


def test_timeouts_are_retried_then_unreachable(caplog):
    with scripted_server([(200, 1.0)], delay=0.5) as (url, seen):
        with pytest.raises(ApiUnreachableError) as excinfo:
            _client(url, timeout=0.1, max_retries=1).total_flops_used()
    assert len(seen) == 2
    assert "timed out" in str(excinfo.value)
    _assert_secret_hidden(excinfo.value, caplog)


def test_invalid_config_costs_no_request():
    with scripted_server([(200, {"loss": 1.0, "total_flops_used": 0.0})]) as (url, seen):
        with pytest.raises(InvalidConfigError, match="d_model must be in range"):
            _client(url).loss(RunConfig(**{**CONFIG.to_query(), "d_model": 9999}))
    assert seen == []


def test_previous_runs_parse_to_observations():
    row = {**CONFIG.to_query(), "loss": 4.5}
    with scripted_server([(200, {"previous_runs": [row]})]) as (url, _):
        runs = _client(url).previous_runs()
    assert len(runs) == 1 and runs[0].config == CONFIG and runs[0].loss == 4.5


def test_key_from_environment_and_repr(monkeypatch):
    monkeypatch.delenv("BAYES_SCALING_API_KEY", raising=False)
    with pytest.raises(InvalidApiKeyError):
        TrainingApiClient("http://127.0.0.1:1")
    monkeypatch.setenv("BAYES_SCALING_API_KEY", SECRET)
    client = TrainingApiClient("http://127.0.0.1:1/")
    assert SECRET not in repr(client) and SECRET not in str(vars(client).get("_base_url"))
    assert client.base_url == "http://127.0.0.1:1"
    with scripted_server([(200, 2.5e15)]) as (url, seen):
        assert TrainingApiClient(url).total_flops_used() == 2.5e15
    assert f"api_key={SECRET}" in seen[0]


def test_previous_runs_out_of_range_rows_are_left_out_and_null_loss_is_nan(caplog, tmp_path):
    import math

    from bayes_scaling.api.oracle import open_oracle

    good = {**CONFIG.to_query(), "loss": 4.2}
    rows = [good, {**good, "d_model": 9999, "loss": 4.0}, {**good, "train_flops": 7},
            {**good, "learning_rate": 1e-4, "loss": None}]
    with scripted_server([(200, {"previous_runs": rows}), (200, 2e15)]) as (url, _):
        with TrainingApiClient(url, SECRET, max_retries=0) as client:
            runs = client.previous_runs()
    assert [r.config.d_model for r in runs] == [256, 256]
    assert runs[0].loss == 4.2 and math.isnan(runs[1].loss)
    assert "row 2 left out: d_model must be in range [64, 1024], got 9999" in caplog.text
    assert "row 3 left out: train_flops must be one of" in caplog.text
    responses = [(200, {"previous_runs": rows}), (200, 4e15)]
    with scripted_server(responses) as (url, _):
        with TrainingApiClient(url, SECRET, max_retries=0) as client:
            with open_oracle(client, tmp_path / "ledger.sqlite", 2e18) as oracle:
                assert [o.config for o in oracle.observations()] == [CONFIG]
                assert len(oracle.failed_queries()) == 1  # the null loss: charged, not fitted
                assert oracle.flops_used() == 4e15  # the API's spend counts all the same
