"""ChunkExecutor with synthetic chunks: timing, dropping, ensembling math, real-time-chunking prefixes, holds."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.real.client.executor import (
    EXHAUSTED,
    NO_CHUNK,
    NO_FRESH_CHUNK,
    STALE_OBS,
    WAITING,
    ChunkExecutor,
    ExecutorConfig,
)
from manip.real.client.safety import SafetyConfig

DT = 0.05  # 20 Hz


def ramp(start: float, horizon: int = 16, dim: int = 2) -> np.ndarray:
    """A chunk whose action i is (start + i) in every dimension, so the executed index is readable."""
    return np.repeat((start + np.arange(horizon, dtype=float))[:, None], dim, axis=1)


def make(mode: str, **kw) -> ChunkExecutor:
    return ChunkExecutor(ExecutorConfig(mode=mode, control_rate=1 / DT, n_action_steps=4, **kw))


def test_receding_executes_n_action_steps_then_asks_and_holds():
    ex = make("receding")
    assert ex.needs_chunk(0.0)
    first = ex.act(0.0)
    assert first.held and first.reason == NO_CHUNK
    ex.push_chunk(ramp(100), t_obs=0.0)
    got = []
    for k in range(4):
        assert not ex.needs_chunk(k * DT)
        got.append(ex.act(k * DT).action[0])
    assert got == [100, 101, 102, 103]
    assert ex.needs_chunk(4 * DT)
    waiting = ex.act(4 * DT)
    assert waiting.held and waiting.reason == WAITING


def test_receding_anchors_a_late_chunk_at_its_arrival():
    ex = make("receding")
    ex.push_chunk(ramp(0), t_obs=0.0, t_received=3 * DT)  # the robot held still while waiting
    assert ex.act(3 * DT).action[0] == 0
    assert ex.act(4 * DT).action[0] == 1


def test_async_drops_actions_whose_time_has_passed():
    ex = make("async")
    ex.push_chunk(ramp(0), t_obs=0.0, t_received=3 * DT)
    assert ex.act(3 * DT).action[0] == 3  # actions 0..2 were for ticks already gone
    assert ex.stats["dropped actions"] == 3


def test_async_requests_early_by_the_measured_latency():
    ex = make("async")
    for k in range(3):  # three chunks that each took 2 ticks to arrive → estimate 2 ticks
        ex.request_sent(k * DT)
        ex.push_chunk(ramp(0), t_obs=k * DT, t_received=(k + 2) * DT)
    assert ex.latency.estimate() == pytest.approx(2 * DT)
    anchor = 2 * DT  # newest chunk's t_obs; the switch is due at action 4 = anchor + 4 ticks
    assert not ex.needs_chunk(anchor + 1 * DT)
    assert ex.needs_chunk(anchor + 2 * DT)  # 2 ticks of latency before the switch
    ex.request_sent(anchor + 2 * DT)
    assert not ex.needs_chunk(anchor + 3 * DT)  # one request in flight at a time


def test_async_keeps_executing_the_old_chunk_past_n_action_steps_until_the_next_arrives():
    ex = make("async")
    ex.push_chunk(ramp(0, horizon=6), t_obs=0.0)
    assert [ex.act(k * DT).action[0] for k in range(6)] == [0, 1, 2, 3, 4, 5]
    late = ex.act(6 * DT)
    assert late.held and late.reason == EXHAUSTED
    ex.push_chunk(ramp(50), t_obs=5 * DT, t_received=7 * DT)
    assert ex.act(7 * DT).action[0] == 52


def test_adaptive_runs_async_while_the_latency_is_short():
    ex = make("adaptive", adaptive_max_latency_steps=3)
    ex.push_chunk(ramp(0), t_obs=0.0, t_received=2 * DT)  # 2 ticks ≤ 3: keep moving, drop what has passed
    assert ex.act(2 * DT).action[0] == 2
    assert [ex.act(k * DT).action[0] for k in range(3, 7)] == [3, 4, 5, 6]  # past n_action_steps, no wait


def test_adaptive_waits_for_each_chunk_once_the_latency_is_long():
    ex = make("adaptive", adaptive_max_latency_steps=3)
    ex.push_chunk(ramp(0), t_obs=0.0, t_received=5 * DT)  # 5 ticks > 3: run it from its first action
    assert [ex.act(k * DT).action[0] for k in range(5, 9)] == [0, 1, 2, 3]
    assert ex.needs_chunk(9 * DT)
    waiting = ex.act(9 * DT)
    assert waiting.held and waiting.reason == WAITING
    ex.request_sent(9 * DT)
    ex.push_chunk(ramp(50), t_obs=9 * DT, t_received=10 * DT)  # fast again (estimate still > 3 ticks)
    assert ex.act(10 * DT).action[0] == 50


def test_out_of_order_chunk_is_ignored():
    ex = make("async")
    ex.push_chunk(ramp(0), t_obs=1.0)
    ex.push_chunk(ramp(50), t_obs=0.5, t_received=1.0)
    assert ex.act(1.0).action[0] == 0
    assert ex.stats["out-of-order chunks ignored"] == 1


def test_ensemble_weights_match_act_formula():
    k = 0.5
    ex = make("ensemble", ensemble_k=k)
    ex.push_chunk(ramp(0), t_obs=0.0)
    ex.push_chunk(ramp(10), t_obs=DT)
    ex.push_chunk(ramp(20), t_obs=2 * DT)
    # at t = 2·dt: chunk0 gives 2, chunk1 gives 11, chunk2 gives 20; weights exp(-k·i), i=0 oldest
    w = np.exp(-k * np.arange(3))
    expected = (w * np.array([2.0, 11.0, 20.0])).sum() / w.sum()
    assert ex.act(2 * DT).action == pytest.approx([expected, expected])


def test_ensemble_requests_every_tick_and_prunes_finished_chunks():
    ex = make("ensemble", ensemble_every=2)
    ex.request_sent(0.0)
    ex.push_chunk(ramp(0, horizon=3), t_obs=0.0)
    assert not ex.needs_chunk(DT)
    assert ex.needs_chunk(2 * DT)
    ex.push_chunk(ramp(10, horizon=3), t_obs=3 * DT)
    assert len(ex.chunks) == 1  # the first chunk ended at tick 2
    assert ex.act(3 * DT).action[0] == 10


def test_rtc_prefix_is_the_part_that_executes_during_the_latency():
    ex = make("rtc")
    ex.push_chunk(ramp(0), t_obs=0.0)
    prefix = ex.rtc_prefix(2 * DT, latency=2.5 * DT)  # 3 ticks (2, 3, 4) run before the new chunk is there
    assert prefix[:, 0].tolist() == [2, 3, 4]
    assert ex.rtc_prefix(2 * DT, latency=0.0) is None
    # a policy honouring the prefix returns it as the first actions: the join has no jump
    new = ramp(2)
    new[:3] = prefix
    for k in (2, 3, 4):
        ex.act(k * DT)
    ex.push_chunk(new, t_obs=2 * DT, t_received=4.5 * DT)
    assert ex.act(5 * DT).action[0] == 5


def test_nan_action_holds_and_reports():
    ex = make("async", safety=SafetyConfig(hold="repeat"))
    chunk = ramp(0)
    chunk[1, 0] = np.nan
    ex.push_chunk(chunk, t_obs=0.0)
    ok = ex.act(0.0)
    bad = ex.act(DT)
    assert not ok.held
    assert bad.held and "non-finite" in bad.reason
    assert bad.action.tolist() == ok.action.tolist()  # repeat the last safe action


def test_stale_observation_and_missing_chunks_hold():
    ex = make("async", safety=SafetyConfig(max_obs_age_s=0.1, max_chunk_gap_s=None))
    ex.push_chunk(ramp(0), t_obs=0.0)
    assert not ex.act(2 * DT).held
    stale = ex.act(3 * DT)
    assert stale.held and stale.reason == STALE_OBS
    ex2 = make("async", safety=SafetyConfig(max_obs_age_s=None, max_chunk_gap_s=0.1))
    ex2.push_chunk(ramp(0), t_obs=0.0)
    gap = ex2.act(3 * DT)
    assert gap.held and gap.reason == NO_FRESH_CHUNK
    assert ex2.stats[f"hold: {NO_FRESH_CHUNK}"] == 1


def test_hold_zero_keeps_gripper_dimension():
    ex = make("receding", safety=SafetyConfig(hold="zero", hold_keep=[1]))
    ex.push_chunk(np.array([[0.3, 1.0]] * 4), t_obs=0.0)
    for k in range(4):
        ex.act(k * DT)
    held = ex.act(4 * DT)
    assert held.held and held.action.tolist() == [0.0, 1.0]


def test_clamps_and_rate_limit():
    ex = make("async", safety=SafetyConfig(low=[-1, -1], high=[1, 1], max_delta=0.5))
    ex.push_chunk(np.array([[0.0, 0.0], [5.0, -5.0], [5.0, -5.0], [5.0, -5.0]]), t_obs=0.0)
    out = [ex.act(k * DT).action.tolist() for k in range(4)]
    assert out == [[0, 0], [0.5, -0.5], [1.0, -1.0], [1.0, -1.0]]


def test_lost_request_times_out():
    ex = make("async", request_timeout_s=0.2)
    ex.request_sent(0.0)
    assert not ex.needs_chunk(0.1)
    assert ex.needs_chunk(0.25)


def test_bad_chunk_shape_is_a_one_line_error():
    ex = make("async")
    with pytest.raises(ManipError, match="shape"):
        ex.push_chunk(np.zeros(5), t_obs=0.0)
    ex.push_chunk(np.zeros((4, 2)), t_obs=0.0)
    with pytest.raises(ManipError, match="action dim"):
        ex.push_chunk(np.zeros((4, 3)), t_obs=0.1)


def test_bad_safety_config_is_a_one_line_error():
    with pytest.raises(ManipError, match="max_delta"):
        ChunkExecutor(ExecutorConfig(safety=SafetyConfig(max_delta=[1, 2, 3])), action_dim=2)


def test_diffusion_policy_offset_runs_n_action_steps_from_the_current_step():
    # n_obs_steps = 2: chunk[0] is for the previous tick, chunk[1] for the observation time
    for mode in ("receding", "async"):
        ex = make(mode, action_offset=-1)
        ex.push_chunk(ramp(0), t_obs=0.0)
        assert [ex.act(k * DT).action[0] for k in range(4)] == [1, 2, 3, 4]
        assert not ex.needs_chunk(3 * DT)
        assert ex.needs_chunk(4 * DT)
    rtc = make("rtc", action_offset=-1)
    rtc.push_chunk(ramp(0), t_obs=0.0)
    # a chunk requested at tick 2 starts at tick 1 (index 0); ticks 1..3 run before it arrives at 3.5
    assert rtc.rtc_prefix(2 * DT, latency=1.5 * DT)[:, 0].tolist() == [2, 3, 4]
