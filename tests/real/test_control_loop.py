"""ChunkedController: observation history, injected delay and chunk alignment in simulated time."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.specs import FeatureSpec, Spec
from manip.real.client.executor import ExecutorConfig
from manip.real.client.latency import InjectedDelay, LatencyEstimator
from manip.real.client.loop import ChunkedController, ObsHistory
from manip.real.client.sources import ChunkSource, SourceMetadata

DT = 0.05


class TickSource:
    """A source whose action i is the control tick it is meant for: t_obs/dt + i (and it honours prefixes)."""

    def __init__(self, horizon: int = 16):
        self.metadata = SourceMetadata(
            policy_type="tick",
            obs_spec=Spec((FeatureSpec("tick", (1,)),)),
            action_spec=Spec((FeatureSpec("action", (1,)),)),
            horizon=horizon,
            n_obs_steps=2,
            n_action_steps=4,
            control_rate=1 / DT,
        )
        self.windows, self.prefixes = [], []

    def request(self, obs, t_obs, prefix=None, instruction=None):
        self.windows.append(obs["tick"].copy())
        self.prefixes.append(prefix)
        chunk = (round(t_obs / DT) + np.arange(self.metadata.horizon, dtype=float))[:, None]
        if prefix is not None:
            chunk[: len(prefix)] = prefix
        return chunk


def run(mode: str, delay: InjectedDelay | None, ticks: int = 40):
    source = TickSource()
    ctl = ChunkedController(source, ExecutorConfig(mode=mode, control_rate=1 / DT, n_action_steps=4), delay)
    out = [ctl.act({"tick": np.array([k], dtype=float)}, k * DT) for k in range(ticks)]
    return source, ctl, out


def test_source_protocol_is_satisfied():
    assert isinstance(TickSource(), ChunkSource)


@pytest.mark.parametrize("mode", ["async", "rtc"])
@pytest.mark.parametrize("delay", [0.0, 0.12, 0.3])
def test_async_modes_stay_aligned_under_fixed_delay(mode, delay):
    _, _, out = run(mode, InjectedDelay(fixed_s=delay))
    first = next(k for k, a in enumerate(out) if not a.held)
    assert all(a.action.shape == (1,) for a in out)  # holds before the first chunk have the action's size
    assert first == int(np.ceil(delay / DT - 1e-9))  # nothing until the first chunk arrives
    executed = [(k, a.action[0]) for k, a in enumerate(out) if not a.held]
    assert all(value == k for k, value in executed)  # every action ran at the tick it was meant for
    assert len(executed) == len(out) - first  # and after the first chunk there was never a gap


def test_async_stays_aligned_under_jitter():
    _, ctl, out = run("async", InjectedDelay(fixed_s=0.05, jitter_s=0.1, seed=3), ticks=80)
    executed = [(k, a.action[0]) for k, a in enumerate(out) if not a.held]
    assert executed and all(value == k for k, value in executed)
    assert ctl.executor.stats["dropped actions"] > 0


def test_receding_holds_while_waiting_under_delay():
    _, _, out = run("receding", InjectedDelay(fixed_s=0.1))
    held = [a.held for a in out[:12]]
    # request at 0 → arrives tick 2, runs 4 actions (2..5), request at 6 → arrives 8, …
    assert held == [True, True, False, False, False, False, True, True, False, False, False, False]


def test_rtc_sends_the_prefix_that_runs_during_the_delay():
    source, _, _ = run("rtc", InjectedDelay(fixed_s=0.1))
    later = [p for p in source.prefixes[2:] if p is not None]
    assert later and all(len(p) == 2 for p in later)  # 0.1 s at 20 Hz = 2 ticks


def test_history_pads_with_the_first_observation():
    source, _, _ = run("receding", None, ticks=6)
    assert source.windows[0][:, 0].tolist() == [0, 0]
    assert source.windows[1][:, 0].tolist() == [3, 4]
    hist = ObsHistory(3)
    hist.push({"a": np.array([1.0])})
    assert hist.window()["a"][:, 0].tolist() == [1, 1, 1]


def test_latency_estimator_statistics():
    est = LatencyEstimator("quantile", quantile=0.5, initial=0.3)
    assert est.estimate() == 0.3
    for v in (0.1, 0.2, 0.3):
        est.add(v)
    assert est.estimate() == pytest.approx(0.2)
    ewma = LatencyEstimator("ewma", alpha=0.5)
    ewma.add(1.0)
    ewma.add(0.0)
    assert ewma.estimate() == pytest.approx(0.5)
