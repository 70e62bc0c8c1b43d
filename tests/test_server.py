from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.simulator.server import BUDGET_STATUS, create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import RunConfig, validate_config
from live_server import free_port, wait_for_port

KEY = "test-key-123"
GOOD = {
    "d_model": 256, "num_layers": 4, "num_heads": 4, "batch_size": 128,
    "learning_rate": 5e-4, "train_flops": 10**15,
}


def _app(budget: float = 2e18, keys=(KEY, "second-key")):
    return create_app(Truth(), store=RunStore(":memory:"), allowed_keys=keys, budget_flops=budget)


@pytest.fixture()
def client():
    with TestClient(_app()) as test_client:
        yield test_client


def _loss(client, key=KEY, **overrides):
    return client.get("/loss", params={**GOOD, **overrides, "api_key": key})


def test_good_query_and_repeat_is_free_and_identical(client):
    response = _loss(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"loss", "total_flops_used"}
    expected = observed_loss(Truth(), RunConfig(**GOOD))
    assert body["loss"] == expected
    assert body["total_flops_used"] == 1e15
    again = _loss(client).json()
    assert again == body
    assert client.get("/total_flops_used", params={"api_key": KEY}).json() == 1e15


@pytest.mark.parametrize(
    "overrides",
    [
        {"d_model": 9999},
        {"d_model": 32},
        {"num_layers": 1},
        {"num_layers": 25},
        {"num_heads": 1},
        {"num_heads": 32},
        {"batch_size": 64},
        {"learning_rate": 2e-3},
        {"learning_rate": 5e-5},
        {"train_flops": 2 * 10**13},
        {"d_model": 100, "num_heads": 8},
        {"d_model": 9999, "num_layers": 99},  # the first failing check in the API's order wins
    ],
)
def test_bad_ranges_are_404_with_the_api_message(client, overrides):
    response = _loss(client, **overrides)
    assert response.status_code == 404
    with pytest.raises(InvalidConfigError) as excinfo:
        validate_config(RunConfig(**{**GOOD, **overrides}))
    assert response.json() == {"message": str(excinfo.value)}
    assert client.get("/total_flops_used", params={"api_key": KEY}).json() == 0.0


def test_design_example_message(client):
    response = _loss(client, d_model=9999)
    assert response.json() == {"message": "d_model must be in range [64, 1024], got 9999"}


def test_missing_and_malformed_parameters_use_the_message_shape(client):
    params = {k: v for k, v in GOOD.items() if k != "num_heads"}
    response = client.get("/loss", params={**params, "api_key": KEY})
    assert response.status_code == 404
    assert "num_heads" in response.json()["message"]
    response = _loss(client, d_model="abc")
    assert response.status_code == 404
    assert set(response.json()) == {"message"}
    assert "detail" not in response.text


def test_bad_key_is_422_on_every_endpoint(client):
    for path in ("/loss", "/total_flops_used", "/previous_runs"):
        response = client.get(path, params={**GOOD, "api_key": "nope"})
        assert response.status_code == 422
        assert response.json() == {"message": "Invalid API key provided: nope"}
    response = client.get("/total_flops_used")
    assert response.status_code == 422
    assert set(response.json()) == {"message"}
    # the key is checked before the ranges
    response = _loss(client, key="nope", d_model=9999)
    assert response.status_code == 422


def test_over_budget_is_refused_and_charges_nothing():
    with TestClient(_app(budget=2e15)) as client:
        assert _loss(client).status_code == 200
        assert _loss(client, learning_rate=6e-4).json()["total_flops_used"] == 2e15
        refused = _loss(client, train_flops=10**13)
        assert refused.status_code == BUDGET_STATUS
        assert "budget" in refused.json()["message"]
        assert set(refused.json()) == {"message"}
        assert client.get("/total_flops_used", params={"api_key": KEY}).json() == 2e15
        runs = client.get("/previous_runs", params={"api_key": KEY}).json()["previous_runs"]
        assert len(runs) == 2
        # a repeat is still free once the budget is spent
        assert _loss(client).status_code == 200


def test_previous_runs_only_lists_the_keys_own_runs(client):
    _loss(client)
    _loss(client, learning_rate=1e-4)
    _loss(client, key="second-key", d_model=512, num_heads=8)
    own = client.get("/previous_runs", params={"api_key": KEY}).json()
    assert list(own) == ["previous_runs"]
    assert [r["learning_rate"] for r in own["previous_runs"]] == [5e-4, 1e-4]
    assert set(own["previous_runs"][0]) == set(GOOD) | {"loss"}
    other = client.get("/previous_runs", params={"api_key": "second-key"}).json()["previous_runs"]
    assert [r["d_model"] for r in other] == [512]
    assert client.get("/total_flops_used", params={"api_key": "second-key"}).json() == 1e15


def _start_cli(db: Path, keys: Path, port: int, budget: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("bayes-scaling")
    env = {k: v for k, v in os.environ.items() if k != "BAYES_SCALING_API_KEY"}
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", str(db), "--keys", str(keys), "--port", str(port),
         "--budget", budget],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    wait_for_port(port, proc=proc)
    return proc


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


def test_cli_server_keeps_runs_and_spend_across_restart(tmp_path):
    db = tmp_path / "api.sqlite3"
    keys = tmp_path / "keys.txt"
    keys.write_text("# allowed keys\ncli-secret-key\n\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_cli(db, keys, port, "3e15")
    try:
        params = {**GOOD, "api_key": "cli-secret-key"}
        first = requests.get(f"{url}/loss", params=params, timeout=30)
        assert first.status_code == 200
        bad = requests.get(f"{url}/total_flops_used", params={"api_key": "sim-key"}, timeout=30)
        assert bad.status_code == 422  # --keys replaces the demo key
    finally:
        log = _stop(proc)
    assert str(db) in log and "3e+15" in log
    assert "cli-secret-key" not in log
    proc = _start_cli(db, keys, port, "3e15")
    try:
        params = {"api_key": "cli-secret-key"}
        assert requests.get(f"{url}/total_flops_used", params=params, timeout=30).json() == 1e15
        runs = requests.get(f"{url}/previous_runs", params=params, timeout=30).json()
        assert runs["previous_runs"] == [{**GOOD, "loss": first.json()["loss"]}]
        again = requests.get(f"{url}/loss", params={**GOOD, **params}, timeout=30).json()
        assert again == first.json()
        more = requests.get(
            f"{url}/loss", params={**GOOD, **params, "train_flops": 3 * 10**15}, timeout=30
        )
        assert more.status_code == BUDGET_STATUS
        assert requests.get(f"{url}/total_flops_used", params=params, timeout=30).json() == 1e15
    finally:
        _stop(proc)


def test_key_sources(tmp_path, monkeypatch):
    from bayes_scaling.cli.serve_cmd import DEFAULT_DEMO_KEY, load_keys
    from bayes_scaling.errors import BayesScalingError

    monkeypatch.delenv("BAYES_SCALING_API_KEY", raising=False)
    keys, source = load_keys(None)
    assert keys == {DEFAULT_DEMO_KEY} and DEFAULT_DEMO_KEY in source
    monkeypatch.setenv("BAYES_SCALING_API_KEY", "env-secret")
    keys, source = load_keys(None)
    assert keys == {"env-secret"} and "env-secret" not in source
    path = tmp_path / "keys"
    path.write_text("a\n  b  \n#c\n\n")
    keys, source = load_keys(path)
    assert keys == {"a", "b"} and "a" not in source.replace(str(path), "")
    path.write_text("# none\n")
    with pytest.raises(BayesScalingError, match="holds no key"):
        load_keys(path)
