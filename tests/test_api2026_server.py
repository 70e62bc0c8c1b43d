"""Contract tests of `serve --api 2026` started from the CLI (shared/API_2026.md)."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from api2026_configs import CROSS_FIELD_CASES, apply_changes, notebook_body, with_path
from api2026_server import KEYS, headers, server_2026, start_server, stop_server, wait_finished
from bayes_scaling.api2026.schemas import ExperimentResponse

LONG_TOKENS = 8388608 * 256  # about 1,056 simulated seconds with the default truth


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with server_2026(tmp_path_factory.mktemp("api2026"), time_scale=1000.0) as base:
        yield base


def _submit(url, body, key=KEYS[0], **kwargs):
    return requests.post(f"{url}/submit", json=body, headers=headers(key), **kwargs)


def test_every_cross_field_message_at_loc_body(url):
    for changes, message in CROSS_FIELD_CASES:
        r = _submit(url, apply_changes(notebook_body(), changes))
        assert r.status_code == 422, message
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body"]
        assert error["msg"] == f"Value error, {message}"
        assert error["type"] == "value_error"


@pytest.mark.parametrize(
    ("path", "value", "kind", "loc"),
    [
        (("seq_len",), 512, "extra_forbidden", ["body", "seq_len"]),
        (("architecture_config", "dtype"), "float16", "literal_error",
         ["body", "architecture_config", "dtype"]),
        (("train_batch_size",), 0, "greater_than", ["body", "train_batch_size"]),
        (("max_runtime_seconds",), 43201, "less_than_equal", ["body", "max_runtime_seconds"]),
        (("architecture_config", "rope_theta"), 31622.7, "int_from_float",
         ["body", "architecture_config", "rope_theta"]),
    ],
)
def test_field_errors(url, path, value, kind, loc):
    r = _submit(url, with_path(notebook_body(), path, value))
    assert r.status_code == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [(kind, loc)]


def test_check_order_json_then_auth_then_validation(url):
    bad_json = requests.post(
        f"{url}/submit", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"][0]["type"] == "json_invalid"
    invalid_body = {"unknown": 1}
    missing = requests.post(f"{url}/submit", json=invalid_body)
    assert (missing.status_code, missing.json()) == (401, {"detail": "missing X-API-Key"})
    empty = requests.post(f"{url}/submit", json=invalid_body, headers={"X-API-Key": ""})
    assert (empty.status_code, empty.json()) == (401, {"detail": "missing X-API-Key"})
    wrong = requests.post(f"{url}/submit", json=invalid_body, headers={"X-API-Key": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid API key"})
    assert requests.get(f"{url}/budget", headers={"x-api-key": "nope"}).status_code == 401
    assert _submit(url, invalid_body).status_code == 422
    path = requests.get(f"{url}/experiment/abc", headers=headers())
    assert path.status_code == 422 and path.json()["detail"][0]["type"] == "int_parsing"
    assert requests.get(f"{url}/experiment/abc").status_code == 401


def test_duplicates_global_ids_and_cross_key_404(url):
    # A long run (about 4 wall seconds), so that nothing finishes while the budget is compared.
    body = notebook_body(model_seed=101, total_train_tokens=LONG_TOKENS * 4,
                         max_runtime_seconds=5000)
    first = _submit(url, body)
    assert first.status_code == 200
    spent = first.json()["budget_summary"]
    assert spent == requests.get(f"{url}/budget", headers=headers()).json()
    # The same validated values written differently: omitted defaults, 5000 for 5000.0, 1e6.
    same = {k: v for k, v in body.items() if k != "n_evals"}
    same = with_path(same, ("max_runtime_seconds",), 5000.0)
    same = with_path(same, ("architecture_config", "rope_theta"), 1e6)
    dup = _submit(url, same)
    assert dup.status_code == 409
    assert dup.json() == {"detail": "experiment already exists for this training config"}
    assert requests.get(f"{url}/budget", headers=headers()).json() == spent
    other = _submit(url, body, key=KEYS[1])
    assert other.status_code == 200
    third = _submit(url, notebook_body(model_seed=102))
    ids = [first.json()["experiment_id"], other.json()["experiment_id"],
           third.json()["experiment_id"]]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[1] == ids[0] + 1
    cross = requests.get(f"{url}/experiment/{ids[0]}", headers=headers(KEYS[1]))
    assert (cross.status_code, cross.json()) == (404, {"detail": "not found"})
    missing = requests.get(f"{url}/experiment/999999", headers=headers())
    assert (missing.status_code, missing.json()) == (404, {"detail": "not found"})
    mine = requests.get(f"{url}/experiments", headers=headers(KEYS[1])).json()
    assert [e["experiment_id"] for e in mine] == [ids[1]]


def test_lifecycle_refund_and_bf16_rounding(url):
    r = _submit(url, notebook_body(model_seed=7), key=KEYS[1])
    exp_id = r.json()["experiment_id"]
    done = wait_finished(url, exp_id, key=KEYS[1])
    status = done["status"]
    assert status["status_type"] == "completed"
    losses = status["val_losses"]
    assert len(losses) == 16 and losses == sorted(losses, reverse=True)
    assert abs(losses[0] - 9.63) < 0.1 and abs(losses[-1] - 7.19) < 0.1
    assert abs(status["used_runtime_seconds"] - 10.18) < 0.05
    # bf16 batch means averaged over 16 batches: multiples of 2^-9 (spec section 2.3).
    assert all(float(v * 512).is_integer() for v in losses)
    ExperimentResponse.model_validate(done)
    assert done["training_config"] == json.loads(json.dumps(notebook_body(model_seed=7)))
    # Refund: once every run of the key has finished, used = sum of clip(used, 1, max).
    for e in requests.get(f"{url}/experiments", headers=headers(KEYS[1])).json():
        wait_finished(url, e["experiment_id"], key=KEYS[1])
    rows = requests.get(f"{url}/experiments", headers=headers(KEYS[1])).json()
    charges = [
        min(max(1.0, e["status"]["used_runtime_seconds"]),
            e["training_config"]["max_runtime_seconds"])
        for e in rows
    ]
    budget = requests.get(f"{url}/budget", headers=headers(KEYS[1])).json()
    assert budget["used_seconds"] == pytest.approx(sum(charges))
    assert budget["remaining_seconds"] == pytest.approx(43200 - sum(charges))
    assert status["used_runtime_seconds"] in [e["status"]["used_runtime_seconds"] for e in rows]


def test_val_losses_grow_while_running(url):
    exp_id = _submit(url, notebook_body(total_train_tokens=LONG_TOKENS, max_runtime_seconds=2000,
                                        model_seed=3)).json()["experiment_id"]
    seen = set()
    status = {"status_type": "queued"}
    while status["status_type"] in ("queued", "running"):
        status = requests.get(f"{url}/experiment/{exp_id}", headers=headers()).json()["status"]
        if status["status_type"] == "running":
            seen.add(len(status["val_losses"]))
            assert "used_runtime_seconds" not in status
    assert status["status_type"] == "completed"
    assert any(0 < n < 16 for n in seen)


def test_timeout_is_charged_the_reservation_with_the_partial_curve(url):
    body = notebook_body(max_runtime_seconds=5, model_seed=11)
    r = _submit(url, body)
    status = wait_finished(url, r.json()["experiment_id"])["status"]
    assert status["status_type"] == "failed" and "val_losses" not in status
    assert status["reason"]["reason"] == "timeout"
    partial = status["reason"]["partial_val_losses"]
    assert 0 < len(partial) < 16  # checked before each chunk: chunks of 0.64 s, so 8 ran
    assert status["used_runtime_seconds"] > 5
    # Charged exactly max_runtime_seconds: the budget with this run equals that without it
    # plus 5 once everything else of the key has finished.
    rows = requests.get(f"{url}/experiments", headers=headers()).json()
    for e in rows:
        wait_finished(url, e["experiment_id"])
    rows = requests.get(f"{url}/experiments", headers=headers()).json()
    others = sum(
        min(max(1.0, e["status"]["used_runtime_seconds"]),
            e["training_config"]["max_runtime_seconds"])
        for e in rows if e["experiment_id"] != r.json()["experiment_id"]
    )
    used = requests.get(f"{url}/budget", headers=headers()).json()["used_seconds"]
    assert used == pytest.approx(others + 5.0)


def test_budget_is_checked_before_duplicates_and_refusals_cost_nothing(tmp_path):
    with server_2026(tmp_path, time_scale=1.0) as url:
        big = notebook_body(max_runtime_seconds=43200)
        assert _submit(url, big).status_code == 200
        budget = requests.get(f"{url}/budget", headers=headers()).json()
        assert budget == {"used_seconds": 43200.0, "remaining_seconds": 0.0,
                          "total_budget_seconds": 43200.0}
        for body in (big, notebook_body(max_runtime_seconds=1)):
            r = _submit(url, body)
            assert r.status_code == 400
            assert r.json() == {"detail": {"message": "insufficient budget",
                                           "budget_summary": budget}}
        # The final submission does not touch the budget and is replaced by a new POST.
        assert requests.get(f"{url}/final_submission", headers=headers()).json() is None
        final = {"training_config": notebook_body(), "predicted_final_loss": 3.1}
        r = requests.post(f"{url}/final_submission", json=final, headers=headers())
        assert r.status_code == 200 and r.json()["predicted_final_loss"] == 3.1
        final["predicted_final_loss"] = 3.05
        requests.post(f"{url}/final_submission", json=final, headers=headers())
        got = requests.get(f"{url}/final_submission", headers=headers()).json()
        assert got["predicted_final_loss"] == 3.05 and got["submitted_at"].endswith("Z")
        assert requests.get(f"{url}/final_submission", headers=headers(KEYS[1])).json() is None
        bad = dict(final, predicted_final_loss=0)
        r = requests.post(f"{url}/final_submission", json=bad, headers=headers())
        assert r.json()["detail"][0]["type"] == "greater_than"
        bad = {"training_config": notebook_body(val_batch_size=3), "predicted_final_loss": 3.0}
        (error,) = requests.post(f"{url}/final_submission", json=bad, headers=headers()).json()[
            "detail"]
        assert error["loc"] == ["body", "training_config"]
        assert requests.get(f"{url}/budget", headers=headers()).json() == budget


def test_sixteen_clients_racing_for_the_last_seconds_never_go_below_zero(tmp_path):
    with server_2026(tmp_path, time_scale=1.0) as url:
        assert _submit(url, notebook_body(max_runtime_seconds=43100)).status_code == 200
        accepted: list[float] = []
        refused = []
        lock = threading.Lock()

        def client(i):
            session = requests.Session()
            for j in range(4):
                seconds = 5.0 + (7 * i + 3 * j) % 20
                body = notebook_body(max_runtime_seconds=seconds, model_seed=1000 + 10 * i + j)
                r = session.post(f"{url}/submit", json=body, headers=headers())
                with lock:
                    (accepted if r.status_code == 200 else refused).append(
                        seconds if r.status_code == 200 else r.status_code
                    )

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        budget = requests.get(f"{url}/budget", headers=headers()).json()
        assert set(refused) == {400}
        assert budget["remaining_seconds"] >= 0
        assert budget["used_seconds"] == pytest.approx(43100 + sum(accepted))
        assert 100 - 24 <= sum(accepted) <= 100
        assert len(requests.get(f"{url}/experiments", headers=headers()).json()) == 1 + len(
            accepted)


def test_restart_persistence_runs_in_flight_finish(tmp_path):
    db = tmp_path / "persist.db"
    proc, url = start_server(tmp_path, time_scale=400.0, db=db)
    try:
        body = notebook_body(total_train_tokens=LONG_TOKENS, max_runtime_seconds=3000)
        exp_id = _submit(url, body).json()["experiment_id"]
        short = _submit(url, notebook_body(model_seed=5)).json()["experiment_id"]
        final = {"training_config": notebook_body(), "predicted_final_loss": 3.2}
        requests.post(f"{url}/final_submission", json=final, headers=headers())
        wait_finished(url, short)
        while True:
            status = requests.get(f"{url}/experiment/{exp_id}", headers=headers()).json()[
                "status"]
            if status["status_type"] == "running" and len(status["val_losses"]) >= 2:
                break
        before = requests.get(f"{url}/experiments", headers=headers()).json()
    finally:
        stop_server(proc, kill=True)
    proc, url = start_server(tmp_path, time_scale=400.0, db=db)
    try:
        after = requests.get(f"{url}/experiments", headers=headers()).json()
        assert [e["experiment_id"] for e in after] == [e["experiment_id"] for e in before]
        resumed = next(e for e in after if e["experiment_id"] == exp_id)["status"]
        assert resumed["status_type"] == "running"
        assert len(resumed["val_losses"]) >= len(status["val_losses"])
        done = wait_finished(url, exp_id)["status"]
        assert done["status_type"] == "completed" and len(done["val_losses"]) == 16
        assert done["val_losses"][: len(status["val_losses"])] == status["val_losses"]
        used = requests.get(f"{url}/budget", headers=headers()).json()["used_seconds"]
        short_used = next(e for e in after if e["experiment_id"] == short)["status"][
            "used_runtime_seconds"]
        assert used == pytest.approx(short_used + done["used_runtime_seconds"])
        got = requests.get(f"{url}/final_submission", headers=headers()).json()
        assert got["predicted_final_loss"] == 3.2
        new_id = _submit(url, notebook_body(model_seed=6)).json()["experiment_id"]
        assert new_id == max(exp_id, short) + 1
    finally:
        stop_server(proc)
