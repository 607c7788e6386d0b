"""Corrections with rewind: the scripted expert watches a policy, intervenes, rewinds the arm, then corrects."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli import manip


@pytest.fixture(scope="module")
def policy_checkpoint(tmp_path_factory):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    return lift_checkpoint(tmp_path_factory.mktemp("ckpt") / "policy")


@pytest.fixture(scope="module")
def drifting_checkpoint(tmp_path_factory):
    """The untrained policy with its action statistics shifted: it drifts steadily away (+x, +z)."""
    import json

    from tests.sim.tiny_checkpoint import lift_checkpoint

    path = lift_checkpoint(tmp_path_factory.mktemp("ckpt") / "drifting")
    meta = json.loads((path / "config.json").read_text())
    action = meta["normalizer"]["features"]["action"]
    for dim, shift in ((0, 0.4), (2, 0.3)):  # x = (n - offset) / scale: lower the offset to add `shift`
        action["offset"][dim] -= shift * action["scale"][dim]
    (path / "config.json").write_text(json.dumps(meta))
    return path


@pytest.mark.slow
def test_rewind_moves_the_arm_back_and_flags_every_phase(tmp_path, drifting_checkpoint, lift_env):
    from manip.data.recorder import Recorder
    from manip.data.store import EpisodeStore
    from manip.policies.serving import LocalPolicySource
    from manip.sim import corrections
    from manip.sim.collect import CollectReport, Unattended
    from manip.sim.corrections import (
        CORRECTION,
        POLICY,
        RECOVERY,
        CorrectionSettings,
        record_correction_episode,
    )
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.tasks import controller_for

    source = LocalPolicySource.from_checkpoint(drifting_checkpoint, device="cpu")
    controller = controller_for(source, lift_env.task)
    device = ScriptedDevice("Lift")
    # the untrained policy never reaches the expert's first waypoint: a stall after 30 ticks triggers
    settings = CorrectionSettings(
        divergence=1e9, stall_steps=30, min_policy_steps=30, rewind_steps=20, rewind_stride=2
    )
    recovered = {}
    original_act = corrections.Rewind.act

    def act_and_watch(
        self, sim
    ):  # record the arm's distance to the rewind goal before and after the recovery
        recovered.setdefault("start", float(np.linalg.norm(sim.eef_pos() - self.goal)))
        action = original_act(self, sim)
        recovered["end"] = float(np.linalg.norm(sim.eef_pos() - self.goal))
        return action

    corrections.Rewind.act = act_and_watch
    try:
        store = EpisodeStore.create(tmp_path / "c.zarr")
        recorder = Recorder(store)
        episode = record_correction_episode(
            lift_env, device, recorder, 0, controller, Unattended(quiet=True), CollectReport(), settings
        )
        recorder.commit(success=episode.success, **episode.meta)
    finally:
        corrections.Rewind.act = original_act
    data = store.get_episode(0, ["phase", "intervention", "robot0_eef_pos"])
    phase, flags = data["phase"], data["intervention"]
    assert phase.dtype == np.int8
    switch = int(np.argmax(phase != POLICY))
    assert switch == episode.meta["intervention_step"] >= 29
    assert np.all(phase[:switch] == POLICY) and np.all(
        np.diff(phase) >= 0
    )  # policy, then recovery, then correction
    assert set(phase.tolist()) == {POLICY, RECOVERY, CORRECTION}
    np.testing.assert_array_equal(flags, phase != POLICY)
    meta = store.episode_meta(0)
    assert meta["intervened"] and meta["trigger"] == "stall" and meta["corrections"]
    assert (
        meta["resumed_at"] == meta["failure_phase"]
    )  # Lift's first phases check nothing: resumed right there
    assert meta["recovery_steps"] == int((phase == RECOVERY).sum()) > 0
    assert meta["correction_steps"] == int((phase == CORRECTION).sum()) > 0
    # the recovery brought the arm back toward where it was 20 policy ticks before the intervention
    goal = np.asarray(meta["rewind_goal"])
    eef = data["robot0_eef_pos"]
    at_trigger = np.linalg.norm(eef[switch] - goal)
    after_recovery = np.linalg.norm(eef[switch + meta["recovery_steps"]] - goal)
    assert at_trigger > 0.01 and after_recovery < 0.5 * at_trigger
    assert recovered["end"] < recovered["start"]
    assert np.linalg.norm(goal - eef[switch - 20]) < 0.01  # the goal is the pose of 20 ticks earlier


@pytest.mark.slow
def test_without_rewind_a_correction_until_success_finishes_the_task(tmp_path, drifting_checkpoint, lift_env):
    from manip.data.recorder import Recorder
    from manip.data.store import EpisodeStore
    from manip.policies.serving import LocalPolicySource
    from manip.sim.collect import CollectReport, Unattended
    from manip.sim.corrections import CORRECTION, POLICY, CorrectionSettings, record_correction_episode
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.tasks import controller_for

    controller = controller_for(
        LocalPolicySource.from_checkpoint(drifting_checkpoint, device="cpu"), lift_env.task
    )
    settings = CorrectionSettings(
        divergence=1e9, stall_steps=30, min_policy_steps=30, rewind_steps=0, until_success=True
    )
    store = EpisodeStore.create(tmp_path / "c.zarr")
    recorder = Recorder(store)
    episode = record_correction_episode(
        lift_env,
        ScriptedDevice("Lift"),
        recorder,
        0,
        controller,
        Unattended(quiet=True),
        CollectReport(),
        settings,
    )
    recorder.commit(success=episode.success, **episode.meta)
    phase = store.get_episode(0, ["phase"])["phase"]
    switch = int(np.argmax(phase != POLICY))
    assert switch == episode.meta["intervention_step"] and episode.meta["recovery_steps"] == 0
    assert np.all(phase[:switch] == POLICY) and np.all(
        phase[switch:] == CORRECTION
    )  # straight to the correction
    # the expert went on past the failed subtask (the approach) through the lift: the task succeeded
    assert episode.ended == "success" and episode.success
    assert episode.meta["correction_steps"] == len(phase) - switch


def test_a_stall_with_stall_motion_waits_until_the_arm_stops_moving():
    from types import SimpleNamespace

    from manip.sim.corrections import CorrectionSettings, FailureWatch

    device = SimpleNamespace(
        human=False, expert=SimpleNamespace(index=0, phase="above")
    )  # a plan that never advances
    command = SimpleNamespace(action=np.zeros(7), active=False)

    def first_trigger(settings, positions):
        watch = FailureWatch(settings, device)
        for tick, position in enumerate(positions):
            if watch.update(command, np.zeros(7), position) == "stall":
                return tick
        return None

    approach = [np.array([0.01 * t, 0.0, 0.0]) for t in range(100)]  # 1 cm per tick, on its way
    halt = approach[:50] + [approach[49]] * 50  # on its way, then still from tick 50
    plain = CorrectionSettings(divergence=1e9, stall_steps=30)
    assert first_trigger(plain, approach) == 30  # the plain stall ignores the motion
    moving = CorrectionSettings(divergence=1e9, stall_steps=30, stall_motion=0.045, stall_window=10)
    assert first_trigger(moving, approach) is None
    assert first_trigger(moving, halt) == 55  # the first tick with < 4.5 cm over the last 10 ticks


def test_rewind_steps_zero_retraces_nothing():
    from manip.sim.corrections import CorrectionSettings, Rewind

    trail = [(np.full(3, float(i)), 1.0) for i in range(30)]
    assert Rewind(trail, CorrectionSettings(rewind_steps=0), 7).goal is None
    assert Rewind(trail, CorrectionSettings(rewind_steps=4, rewind_stride=1), 7).goal[0] == 26.0


@pytest.mark.slow
def test_collect_corrections_cli_writes_flags_and_metadata(tmp_path, policy_checkpoint):
    from manip.data.store import EpisodeStore

    out = tmp_path / "corr.zarr"
    result = manip(
        "collect", "--task", "Lift", "--device", "scripted", "--policy", str(policy_checkpoint), "--corrections",
        "--episodes", "1", "--horizon", "120", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    store = EpisodeStore.open(out)
    data = store.get_episode(0, ["phase", "intervention"])
    meta = store.episode_meta(0)
    assert meta["corrections"] and meta["intervened"] and meta["policy"].startswith("policy@")
    np.testing.assert_array_equal(data["intervention"], data["phase"] != 0)
    assert data["phase"][0] == 0 and data["phase"][-1] == 2


def test_corrections_need_a_policy(tmp_path):
    result = manip(
        "collect", "--task", "Lift", "--device", "scripted", "--corrections", "--episodes", "1",
        "--out", str(tmp_path / "x.zarr"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "--corrections needs --policy" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_collect_corrections_takes_the_watch_settings(tmp_path, policy_checkpoint):
    from manip.data.store import EpisodeStore

    out = tmp_path / "stall.zarr"
    result = manip(
        "collect", "--task", "Lift", "--device", "scripted", "--policy", str(policy_checkpoint), "--corrections",
        "--divergence", "1000", "--stall-steps", "12", "--rewind-steps", "0", "--episodes", "1", "--horizon", "120",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    meta = EpisodeStore.open(out).episode_meta(0)
    assert meta["trigger"] == "stall" and meta["intervention_step"] >= 12  # never "divergence" at 1000
    assert meta["recovery_steps"] == 0 and meta["rewind_goal"] is None  # --rewind-steps 0: no recovery


def test_watch_settings_need_corrections(tmp_path):
    for option in (
        ["--divergence", "0.3"],
        ["--stall-steps", "40"],
        ["--stall-motion", "0.02"],
        ["--corrected-only"],
        ["--correct-until-success"],
        ["--rewind-steps", "5"],
    ):
        result = manip(
            "collect", "--task", "Lift", "--device", "scripted", "--episodes", "1", *option,
            "--out", str(tmp_path / "x.zarr"),
        )  # fmt: skip
        assert result.returncode != 0
        assert f"{option[0]} needs --corrections" in result.stderr and "Traceback" not in result.stderr


def test_watch_settings_refuse_an_operator_and_keep_failures(tmp_path, policy_checkpoint):
    common = ["--task", "Lift", "--policy", str(policy_checkpoint), "--corrections", "--episodes", "1"]
    for flags, message in (
        (["--device", "keyboard", "--stall-steps", "40"], "--stall-steps needs --device scripted"),
        (["--device", "scripted", "--corrected-only", "--keep-failures"], "contradict each other"),
        (["--device", "scripted", "--rewind-steps", "-1"], "--rewind-steps must be >= 0"),
        (["--device", "scripted", "--stall-motion", "-0.1"], "--stall-motion must be >= 0"),
    ):
        result = manip("collect", *common, *flags, "--out", str(tmp_path / "x.zarr"))
        assert result.returncode != 0 and not (tmp_path / "x.zarr").exists()
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_corrected_only_keeps_interventions_not_uncorrected_successes():
    from manip.sim.collect import Episode
    from manip.sim.corrections import CorrectionsUnattended

    def episode(success, intervened):
        e = Episode(seed=0)
        e.success = success
        e.meta["intervened"] = intervened
        return e

    cases = {
        (True, False): ("keep", "discard"),
        (False, True): ("keep", "keep"),
        (False, False): ("discard", "discard"),
    }
    for (success, intervened), expected in cases.items():
        decisions = tuple(
            CorrectionsUnattended(corrected_only=only).decide(None, None, episode(success, intervened), None)
            for only in (False, True)
        )
        assert decisions == expected, (success, intervened)


def test_a_correction_resumes_at_the_failed_subtask_or_the_check_before_it():
    """A correction that re-planned from the first phase would open the hand mid-carry and drop the nut; it
    resumes at the failed phase, or at the lift (which verifies the nut is in the hand) for the phases after it."""
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.env import make_env

    env = make_env("NutAssemblySquare")
    try:
        env.reset(seed=0)
        expert = ScriptedDevice("NutAssemblySquare").expert
        expert.reset(env, 0)
        names = [phase.name for phase in expert.phases]
        resumed = {}
        for name in ("descend", "lift", "carry", "lower", "no-such-phase"):
            expert.reset(env, 0)
            resumed[name] = expert.resume_at(name)
        assert resumed == {
            "descend": "descend",
            "lift": "lift",
            "carry": "lift",
            "lower": "lift",
            "no-such-phase": names[0],
        }
        expert.reset(env, 0)  # the expert itself grasps and lifts the nut, as a policy would before failing
        for _ in range(400):
            if expert.phase == "carry":
                break
            env.step(expert.act(env))
        assert expert.phase == "carry"
        expert.reset(env, 0)  # the correction re-plans from here
        assert expert.resume_at("carry") == "lift"
        closed = [expert.act(env)[6] for _ in range(3)]
        assert expert.phase == "carry" and closed == [1.0] * 3  # the lift's check passes; the nut stays held
        expert.reset(env, 0)
        assert expert.act(env)[6] == -1.0  # re-planned from the first phase, the hand would open
    finally:
        env.close()
