"""The delay sweep's report: markdown table and plot from per-(mode, delay) rows."""

from __future__ import annotations

from manip.sim.delay_sweep import markdown_table, plot


def report() -> dict:
    rows = [
        {"mode": m, "delay_ms": d, "jitter_ms": 0.0, "episodes": 10, "successes": s, "success_rate": s / 10,
         "ci95": [max(0.0, s / 10 - 0.2), min(1.0, s / 10 + 0.2)]}
        for m, d, s in [("receding", 0, 9), ("receding", 200, 4), ("rtc", 0, 9), ("rtc", 200, 8)]
    ]  # fmt: skip
    return {"task": "Lift", "seeds": list(range(10)), "rows": rows}


def test_table_has_one_row_per_mode_and_one_column_per_delay():
    lines = markdown_table(report()).splitlines()
    assert lines[0] == "| mode | 0 ms | 200 ms |"
    assert lines[2] == "| receding | 9/10 (70–100 %) | 4/10 (20–60 %) |"
    assert lines[3].startswith("| rtc | 9/10")


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "sweep.png"
    plot(report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_runs_a_real_lift_episode_with_injected_delay(tmp_path):
    """A tiny untrained Lift policy in robosuite: the first chunk arrives after the delay, then no holds (rtc)."""
    from manip.sim.delay_sweep import sweep

    checkpoint = lift_checkpoint(tmp_path / "ckpt")
    report = sweep(str(checkpoint), "Lift", 1, 7, ["rtc", "receding"], [100.0], 0.0, 1, horizon=12)
    by_mode = {r["mode"]: r for r in report["episodes"]}
    assert by_mode["rtc"]["steps"] == 12 and by_mode["rtc"]["held_ticks"] == 2  # 100 ms at 20 Hz
    assert by_mode["receding"]["held_ticks"] == 4  # holds 2 ticks for each of the two chunks
    assert [r["episodes"] for r in report["rows"]] == [1, 1]


def lift_checkpoint(path):
    """An untrained tiny low-dim policy with Lift's observation and action specs."""
    import numpy as np

    from manip.core.specs import FeatureSpec, Spec
    from manip.data.normalizer import Normalizer
    from manip.policies.config import POLICY_TYPES, parse_policy_config

    shapes = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,), "object": (10,)}
    obs_spec = Spec(tuple(FeatureSpec(k, s) for k, s in shapes.items()))
    rng = np.random.default_rng(0)
    data = {k: rng.normal(size=(32, *s)).astype(np.float32) for k, s in shapes.items()}
    data["action"] = rng.uniform(-0.1, 0.1, size=(32, 7)).astype(np.float32)
    config = parse_policy_config(
        {
            "obs_keys": list(shapes),
            "horizon": 8,
            "n_action_steps": 4,
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16},
            "head": {"name": "flow", "default_steps": 1},
        }
    )
    normalizer = Normalizer.fit([data], dict.fromkeys(data, "minmax"))
    policy = POLICY_TYPES.get(config.type).cls(
        config, obs_spec, Spec((FeatureSpec("action", (7,)),)), normalizer
    )
    policy.save_pretrained(path)
    return path
