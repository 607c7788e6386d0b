"""`manip collect` through the recorder: metadata per episode, failures dropped or kept, devices, bad input."""

from __future__ import annotations

import pytest

from manip.data.store import EpisodeStore
from manip.sim.collect import collect
from manip.sim.devices.scripted import ScriptedDevice
from manip.sim.env import make_env
from tests.cli import manip


def test_collect_cli_writes_a_valid_store_with_metadata(tmp_path):
    out = tmp_path / "lift.zarr"
    result = manip(
        "collect",
        "--task",
        "Lift",
        "--device",
        "scripted",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert "kept 2 episode(s)" in result.stdout
    info = manip("data", "info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    summary = __import__("json").loads(info.stdout)
    assert summary["num_episodes"] == 2 and summary["episode_success"] == [True, True]
    assert summary["keys"]["action"]["shape"] == [7]
    for key in ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"):
        assert key in summary["keys"]
    store = EpisodeStore.open(out)
    metas = [store.episode_meta(i) for i in range(2)]
    assert [m["seed"] for m in metas] == [3, 4]
    assert all(m["task"] == "Lift" and m["source"] == "scripted" and m["success"] is True for m in metas)
    assert metas[0]["instruction"] == "lift the cube"
    validation = manip("data", "validate", str(out))
    assert validation.returncode == 0, validation.stderr


def test_failures_are_dropped_unless_kept(tmp_path):
    env = make_env("Lift", horizon=5)  # too short to succeed
    device = ScriptedDevice("Lift")
    dropped = collect(env, device, tmp_path / "drop.zarr", episodes=2, max_attempts=3, quiet=True)
    assert dropped.kept == 0 and dropped.attempted == 3
    assert EpisodeStore.open(tmp_path / "drop.zarr").num_episodes == 0
    kept = collect(env, device, tmp_path / "keep.zarr", episodes=2, keep_failures=True, quiet=True)
    store = EpisodeStore.open(tmp_path / "keep.zarr")
    assert kept.kept == 2 and store.num_episodes == 2
    assert store.episode_lengths.tolist() == [5, 5]
    assert [store.episode_meta(i)["success"] for i in range(2)] == [False, False]


def test_collect_appends_to_an_existing_store(tmp_path):
    env, device, out = make_env("Lift"), ScriptedDevice("Lift"), tmp_path / "s.zarr"
    collect(env, device, out, episodes=1, seed=0, quiet=True)
    collect(env, device, out, episodes=1, seed=10, quiet=True)
    store = EpisodeStore.open(out)
    assert [store.episode_meta(i)["seed"] for i in range(2)] == [0, 10]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "Lfit", "--device", "scripted"], "unknown task 'Lfit'"),
        (["--task", "Lift", "--device", "joystick"], "unknown device 'joystick'"),
        (["--task", "Lift", "--device", "spacemouse"], "no SpaceMouse found"),
        (["--task", "Lift", "--device", "scripted", "--obs", "depth"], "unknown observation mode"),
        (["--task", "Lift"], "missing required option(s) --device"),
    ],
)
def test_bad_input_one_line(tmp_path, args, message):
    result = manip("collect", *args, "--episodes", "1", "--out", str(tmp_path / "x.zarr"))
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


class TakeOverDevice(ScriptedDevice):
    """An operator who takes over for steps 5..9 of each episode (drives with the expert's actions)."""

    def start_episode(self, env, seed):
        super().start_episode(env, seed)
        self.step = 0

    def poll(self, env, obs):
        command = super().poll(env, obs)
        command.active = 5 <= self.step < 10
        self.step += 1
        return command


def test_corrections_mark_intervention_steps(tmp_path):
    from manip.sim.experts.source import ExpertSource

    env = make_env("Lift")
    policy = ExpertSource(env)  # stands in for a checkpoint: any ChunkSource can drive
    report = collect(
        env, TakeOverDevice("Lift"), tmp_path / "rac.zarr", episodes=1, policy=policy, quiet=True
    )
    assert report.kept == 1
    store = EpisodeStore.open(tmp_path / "rac.zarr")
    flags = store.get_episode(0, keys=["intervention"])["intervention"]
    assert flags.dtype == bool and flags[5:10].all()
    assert not flags[:5].any() and not flags[10:].any()


def test_appending_continues_after_the_stores_last_seed(tmp_path, capsys):
    env, device, out = make_env("Lift", horizon=3), ScriptedDevice("Lift"), tmp_path / "s.zarr"
    first = collect(env, device, out, episodes=2, keep_failures=True, quiet=True)
    again = collect(env, device, out, episodes=2, keep_failures=True, quiet=True)
    assert (first.first_seed, again.first_seed) == (0, 2)
    assert "warning" not in capsys.readouterr().err
    collect(env, device, out, episodes=1, seed=1, keep_failures=True, quiet=True)  # repeats a stored seed
    assert "already holds seeds up to 3; --seed 1 may repeat" in capsys.readouterr().err
    store = EpisodeStore.open(out)
    assert [store.episode_meta(i)["seed"] for i in range(store.num_episodes)] == [0, 1, 2, 3, 1]
