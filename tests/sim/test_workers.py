"""The warm worker pool: one process serves many evaluations, tasks and sweep cells; crashes stay local."""

from __future__ import annotations

import json

import pytest

from manip.sim.eval import CRASH_ENV, SourceSpec, evaluate
from manip.sim.workers import Call, close_shared_pool, shared_pool

EXPERT = SourceSpec("expert")


@pytest.fixture(scope="module")
def pool():
    """A fresh pool of 2 warm workers for this module, closed after it."""
    close_shared_pool()
    fresh = shared_pool()
    fresh.ensure(2)
    yield fresh
    close_shared_pool()


def _worker_states(pool) -> dict[int, tuple[int, list]]:
    """pid → (calls served, [task, horizon] of its warm envs), one status call per worker."""
    outcomes = [o for _, o in pool.run([Call("manip.sim.eval:cached_envs")] * 2, 2)]
    return {o.pid: (o.served, o.value) for o in outcomes}


def test_the_same_workers_serve_two_evaluations_and_two_tasks(pool, tmp_path):
    pids = pool.pids
    first = evaluate(EXPERT, "Lift", 2, tmp_path / "lift", seed=10, workers=2, horizon=6, quiet=True)
    second = evaluate(EXPERT, "PickPlaceCan", 2, tmp_path / "can", seed=10, workers=2, horizon=6, quiet=True)
    assert first["errors"] == second["errors"] == 0
    assert [e["steps"] for e in first["per_episode"] + second["per_episode"]] == [6] * 4
    assert pool.pids == pids and pool.started == 2  # no worker started for the second call or task
    states = _worker_states(pool)
    assert set(states) == set(pids)
    for served, envs in states.values():  # each worker ran one episode of each call (both start at once)
        assert served == 3
        assert envs == [["Lift", 6], ["PickPlaceCan", 6]]  # both envs stay warm in the same process


def test_a_call_outside_manip_is_refused(pool):
    ((_, outcome),) = pool.run([Call("os:getcwd")], 1)
    assert "must be manip.<module>:<function>" in outcome.error and outcome.value is None


def test_a_crashed_worker_is_replaced_and_only_its_episode_fails(pool, tmp_path, monkeypatch):
    started, pids = pool.started, pool.pids
    monkeypatch.setenv(CRASH_ENV, "11")  # read by the warm workers at the call, not only at their start
    results = evaluate(EXPERT, "Lift", 3, tmp_path / "crash", seed=10, workers=2, horizon=6, quiet=True)
    by_seed = {e["seed"]: e for e in results["per_episode"]}
    assert by_seed[11]["error"] == "worker process crashed" and by_seed[11]["success"] is False
    assert "error" not in by_seed[10] and "error" not in by_seed[12]
    assert by_seed[10]["steps"] == by_seed[12]["steps"] == 6
    assert results["errors"] == 1
    assert pool.started == started + 1 and len(pool.pids) == 2  # one replacement; the other worker stayed
    assert len(set(pool.pids) & set(pids)) == 1
    monkeypatch.delenv(CRASH_ENV)
    again = evaluate(EXPERT, "Lift", 2, tmp_path / "again", seed=11, workers=2, horizon=6, quiet=True)
    assert again["errors"] == 0 and pool.started == started + 1


def test_one_and_two_workers_give_identical_results(pool, tmp_path):
    one = evaluate(EXPERT, "Lift", 4, tmp_path / "one", seed=20, workers=1, quiet=True)
    two = evaluate(EXPERT, "Lift", 4, tmp_path / "two", seed=20, workers=2, quiet=True)
    assert one["successes"] == 4  # full episodes, the expert lifts the cube
    assert one["per_episode"] == two["per_episode"]


def test_a_sweep_starts_its_workers_once(pool, tmp_path):
    """4 cells on 2 workers: the pool's 2 warm workers run every cell, no process starts."""
    from manip.sim.sweep import Setting, SweepConfig, cells_of
    from manip.sim.sweep_dispatch import run_local

    config = SweepConfig(
        tasks=["Lift"], seeds=[0, 1, 2, 3], episodes=1, settings=[Setting(horizon=4)], workers=2
    )
    started = pool.started
    rows = run_local(cells_of(config), str(tmp_path), config.workers, quiet=True)
    assert [r["error"] for r in rows] == [""] * 4
    assert pool.started == started
    ran_in = {json.loads((tmp_path / "cells" / r["cell"] / "cell.json").read_text())["pid"] for r in rows}
    assert ran_in <= set(pool.pids) and len(ran_in) == 2
