"""Meta-World as a task suite: the env wrapper (seeding, point clouds), its scripted experts through the CLI
verbs, a points policy evaluated in it, and the per-difficulty table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from manip.sim.env import make_env
from manip.sim.experts import make_expert, rollout
from manip.sim.metaworld.env import WORKSPACE
from manip.sim.metaworld.table import PAPERS, write_table
from manip.sim.metaworld.tasks import GROUPS
from tests.cli import manip, read_json

TASK = "pick-place-v3"


@pytest.fixture(scope="module")
def points_env():
    env = make_env(TASK, obs_mode="points")
    yield env
    env.close()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_registry_holds_the_34_benchmark_tasks_in_their_groups():
    assert [len(GROUPS[g]) for g in ("easy", "medium", "hard", "very_hard")] == [21, 4, 4, 5]
    from manip.sim.tasks import get_task

    spec = get_task(TASK)
    assert spec.action_dim == 4 and spec.gripper_dims == (3,) and spec.difficulty == "hard"


def test_reset_seed_fully_determines_the_episode(points_env):
    first = points_env.reset(seed=7)
    points_env.reset(seed=8)
    for _ in range(5):
        points_env.step(np.array([0.3, -0.2, 0.1, 1.0]))
    again = points_env.reset(seed=7)  # after other episodes and steps: the same initial state
    assert same(first, again)
    other = points_env.reset(seed=8)
    assert not np.array_equal(first["object"], other["object"])  # a new seed moves the object and goal
    fresh = make_env(TASK, obs_mode="points")  # another env (another worker) agrees
    try:
        assert same(fresh.reset(seed=7), first)
    finally:
        fresh.close()
    np.random.seed(123)  # Meta-World's global-numpy fallback is not used
    assert same(points_env.reset(seed=7), first)


def test_point_cloud_is_in_the_base_frame_inside_the_workspace(points_env):
    obs = points_env.reset(seed=3)
    spec = points_env.obs_spec["point_cloud"]
    assert spec.kind == "points" and spec.shape == (512, 3)
    cloud = obs["point_cloud"]
    assert cloud.shape == (512, 3) and cloud.dtype == np.float32
    low, high = np.array(WORKSPACE[0]), np.array(WORKSPACE[1])
    assert ((cloud >= low - 1e-6) & (cloud <= high + 1e-6)).all()
    # the object (obs["object"][:3], a 2 cm puck) and the hand are where the cloud has points
    assert np.linalg.norm(cloud - obs["object"][:3], axis=1).min() < 0.03
    assert np.linalg.norm(cloud - obs["robot0_eef_pos"], axis=1).min() < 0.06
    assert len(np.unique(cloud, axis=0)) == 512  # farthest-point picks, no repeats


def test_scripted_expert_solves_the_task_and_steps_are_checked(points_env):
    expert = make_expert(TASK)
    success, steps = rollout(points_env, expert, seed=11)
    assert success and steps < points_env.horizon
    from manip.core.errors import ManipError

    with pytest.raises(ManipError, match=r"expected \(4,\)"):
        points_env.step(np.zeros(7))


def test_eval_expert_cli(tmp_path):
    out = tmp_path / "eval"
    result = manip("eval", "--expert", "--task", TASK, "--episodes", "2", "--seed", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    results = read_json(out / "results.json")
    assert results["task"] == TASK and results["successes"] == 2 and results["seeds"] == [5, 6]


def test_collect_points_then_train_and_eval_a_points_checkpoint(tmp_path):
    store = tmp_path / "demos.zarr"
    result = manip(
        "collect",
        "--task",
        TASK,
        "--device",
        "scripted",
        "--episodes",
        "2",
        "--obs",
        "points",
        "--out",
        store,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(manip("data", "info", store, "--json").stdout)
    assert info["num_episodes"] == 2 and info["episode_success"] == [True, True]
    assert info["keys"]["point_cloud"] == {"shape": [512, 3], "dtype": "float32"}
    assert info["keys"]["action"]["shape"] == [4]
    config = Path(__file__).resolve().parents[2] / "configs" / "metaworld_points_meanflow_cpu.yaml"
    run = tmp_path / "run"
    trained = manip(
        "train", config, f"data.path={store}", "trainer.steps=2", "trainer.batch_size=4", "--out", run
    )
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "eval"
    evaluated = manip(
        "eval",
        "--checkpoint",
        run / "checkpoint",
        "--task",
        TASK,
        "--episodes",
        "1",
        "--horizon",
        "6",
        "--out",
        out,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    results = read_json(out / "results.json")
    assert results["errors"] == 0 and results["per_episode"][0]["steps"] == 6


def test_robosuite_tasks_refuse_points_in_one_line(tmp_path):
    result = manip("collect", "--task", "Lift", "--device", "scripted", "--episodes", "1", "--obs", "points",
                   "--out", tmp_path / "x.zarr")  # fmt: skip
    assert result.returncode != 0
    assert "task 'Lift' has no 'points' observations" in result.stderr and "Traceback" not in result.stderr


def write_results(path: Path, task: str, rate: float) -> None:
    path.mkdir(parents=True)
    path.joinpath("results.json").write_text(json.dumps({"task": task, "success_rate": rate}))


def test_table_averages_tasks_per_group_and_seeds(tmp_path):
    for seed, rate in ((0, 0.5), (1, 0.7)):
        for task in GROUPS["medium"]:
            write_results(tmp_path / task / f"seed{seed}" / "eval", task, rate)
    write_results(tmp_path / "pick-place-v3" / "seed0" / "eval", "pick-place-v3", 1.0)
    write_results(tmp_path / "Lift" / "seed0" / "eval", "Lift", 0.0)  # not a Meta-World task: ignored
    text = write_table(tmp_path)
    table = json.loads((tmp_path / "metaworld_table.json").read_text())["groups"]
    assert table["medium"]["mean"] == pytest.approx(60.0) and table["medium"]["std"] == pytest.approx(
        14.142, abs=1e-3
    )
    assert table["hard"]["mean"] == pytest.approx(100.0) and table["hard"]["tasks_found"] == 1
    assert table["easy"]["mean"] is None
    assert "| Medium (4) | 60.0 ± 14.1 | 68.0 | 58.2 | 44.5 |" in text
    assert "| Hard (4) | 100.0 (1/4 tasks) |" in text
    assert PAPERS["MP1"]["very_hard"] == 67.2
