"""The 2026 dispatcher's rules: the worker's timeout rule and the fair-share order."""

from __future__ import annotations

import pytest

from bayes_scaling.simulator.server2026 import fair_share_order, plan_finish
from bayes_scaling.simulator.truth2026 import RunOutcome


def _outcome(ends, losses):
    return RunOutcome(val_losses=tuple(losses), chunk_end_seconds=tuple(ends),
                      train_seconds=ends[-1], setup_seconds=0.0, oom=False, failure=None)


def test_timeout_rule_checks_before_each_chunk_after_the_last_and_the_watchdog():
    ends = [10.0, 20.0, 30.0, 40.0]
    losses = [4.0, 3.0, 2.5, 2.2]
    plan = plan_finish(_outcome(ends, losses), 45.0)
    assert (plan.status, plan.used_runtime_seconds, plan.val_losses) == ("completed", 40.0,
                                                                          tuple(losses))
    plan = plan_finish(_outcome(ends, losses), 15.0)  # chunk 2 starts at 20 > 15
    assert plan.status == "failed" and plan.at == 20.0
    assert plan.reason == {"reason": "timeout", "partial_val_losses": [4.0, 3.0]}
    plan = plan_finish(_outcome(ends, losses), 39.0)  # all chunks ran, over at the last check
    assert plan.reason["partial_val_losses"] == losses and plan.used_runtime_seconds == 40.0
    plan = plan_finish(_outcome([100.0], [3.0]), 20.0)  # one long chunk: watchdog at 31
    assert plan.at == pytest.approx(1.05 * 20 + 10) and plan.val_losses == ()


def test_fair_share_order_is_the_spec_worked_example():
    # spec §2.2 / tests/test_scheduler.py: user2 and user3 run 2 each; user1 has 10 queued at
    # t+10, user2 10 at t+19, user3 10 at t+9; 5 free slots.
    queued = []
    for key, t in (("user1", 10.0), ("user2", 19.0), ("user3", 9.0)):
        queued += [(key, t, len(queued) + i + 1) for i in range(10)]
    order = fair_share_order({"user2": 2, "user3": 2}, queued)[:5]
    owners = [next(k for k, _, i in queued if i == exp) for exp in order]
    assert owners == ["user1", "user1", "user3", "user1", "user2"]
