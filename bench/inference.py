"""``manip bench inference``: action-chunk latency per head and step count, batch 1, low-dim and image policies.

Each case builds a policy of the default architecture (``manip.policies.config.PolicyConfig`` defaults: UNet1D
256-512-1024, horizon 16, two observation steps; the image case adds the ResNet-18-GN encoder on two 84×84
cameras) with random weights and a normalizer fitted on random data, then times ``predict_chunk`` end to end
(normalization, encoding, sampling, unnormalization) on one observation. Weights do not change the cost, so no
training is needed. Every policy of one architecture gets the same weights (seeded build).

Reference cases (``eager``): DDIM-10, flow-10 and MeanFlow-1 again on the plain path of the same weights: the head's
``bind_condition`` off (the FiLM projections of the observation recomputed at every sampling step) and the UNet's
convolutions on PyTorch's own CPU path (``set_cpu_packing(policy, False)``) instead of oneDNN products on weights
packed once. ``over_eager`` is each case's p50 over its reference's p50. Figures: min, p50 and p99 of ``repeats``
timed calls after ``warmup`` calls (with few repeats p99 is close to the maximum); the cases are timed round-robin
so load changes hit them alike. Headline: MeanFlow 1-step latency / DDIM-10 latency (p50), per observation mode.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from manip.sim.stats import percentiles_ms

LIFT_LOWDIM = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,), "object": (10,)}
PROPRIO = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
CAMERAS = ("agentview_image", "robot0_eye_in_hand_image")
IMAGE_SIZE = 84
ACTION_DIM = 7


@dataclass(frozen=True)
class Case:
    """One benchmarked configuration: observation mode, head (+ sampler), backbone and sampling steps."""

    obs_mode: str
    head: str
    steps: int
    backbone: str = "unet1d"
    sampler: str | None = None
    eager: bool = False
    """Reference path: the observation conditioning is not bound once per chunk (``head.bind_condition`` off) and
    the convolutions run unpacked (``set_cpu_packing`` off)."""

    @property
    def label(self) -> str:
        name = {"diffusion": (self.sampler or "ddim").upper(), "flow": "flow", "meanflow": "MeanFlow"}[
            self.head
        ]
        suffix = "" if self.backbone == "unet1d" else f" ({self.backbone})"
        return f"{self.obs_mode} {name}-{self.steps}{suffix}{' eager' if self.eager else ''}"

    @property
    def head_config(self) -> dict:
        return {"name": self.head, **({"sampler": self.sampler} if self.sampler else {})}


MODES = ("lowdim", "image")


def default_cases(quick: bool = False, modes: tuple[str, ...] = MODES) -> list[Case]:
    """DDPM-100, DDIM-10, flow-10 and MeanFlow-1 per observation mode, plus the eager references of the last three
    (``quick``: no DDPM-100 at all; the transformer MeanFlow-1 case comes with the low-dim mode)."""
    cases = []
    for mode in modes:
        if not quick:
            cases.append(Case(mode, "diffusion", 100, sampler="ddpm"))
        for head, steps in (("diffusion", 10), ("flow", 10), ("meanflow", 1)):
            cases += [Case(mode, head, steps), Case(mode, head, steps, eager=True)]
    if "lowdim" in modes:
        cases.append(Case("lowdim", "meanflow", 1, backbone="transformer"))
    return cases


def obs_spec_for(mode: str):
    """The Lift observation spec of ``mode``: all low-dim keys, or proprio + two 84×84 cameras."""
    from manip.core.specs import FeatureSpec, Spec

    if mode == "lowdim":
        return Spec(tuple(FeatureSpec(k, s) for k, s in LIFT_LOWDIM.items()))
    features = [FeatureSpec(k, LIFT_LOWDIM[k]) for k in PROPRIO]
    features += [FeatureSpec(k, (IMAGE_SIZE, IMAGE_SIZE, 3), "uint8", "rgb") for k in CAMERAS]
    return Spec(tuple(features))


def random_obs(obs_spec, batch: int, n_obs_steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw observations matching ``obs_spec``: normal floats, uniform uint8 images."""
    rng = np.random.default_rng(seed)
    obs = {}
    for f in obs_spec.features:
        shape = (batch, n_obs_steps, *f.shape)
        if f.kind == "rgb":
            obs[f.name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        else:
            obs[f.name] = rng.normal(size=shape).astype(np.float32)
    return obs


def build_policy(case: Case, policy_overrides: dict | None = None):
    """A randomly initialised policy for ``case`` with a normalizer fitted on random data."""
    from manip.core.specs import FeatureSpec, Spec
    from manip.data.normalizer import Normalizer
    from manip.policies.backbones.packed_conv import set_cpu_packing
    from manip.policies.config import POLICY_TYPES, parse_policy_config

    obs_spec = obs_spec_for(case.obs_mode)
    raw = {
        "obs_keys": obs_spec.names,
        "head": case.head_config,
        "backbone": {"name": case.backbone},
        **(policy_overrides or {}),
    }
    config = parse_policy_config(raw, where="bench")
    lowdim = [f.name for f in obs_spec.of_kind("lowdim")]
    sample = random_obs(obs_spec, 64, 1, seed=1)
    sample["action"] = np.random.default_rng(2).uniform(-1, 1, (64, ACTION_DIM)).astype(np.float32)
    normalizer = Normalizer.fit([sample], {**dict.fromkeys(lowdim, "minmax"), "action": "minmax"})
    action_spec = Spec((FeatureSpec("action", (ACTION_DIM,)),))
    policy = POLICY_TYPES.get(config.type).cls(config, obs_spec, action_spec, normalizer).eval()
    policy.head.bind_condition = not case.eager
    set_cpu_packing(policy, not case.eager)
    return policy


def case_result(case: Case, policy, durations: list[float]) -> dict:
    """The JSON figures of one timed case."""
    return {
        "label": case.label,
        "obs_mode": case.obs_mode,
        "head": case.head,
        "sampler": case.sampler or ("ddim" if case.head == "diffusion" else None),
        "backbone": case.backbone,
        "steps": case.steps,
        "eager_reference": case.eager,
        "repeats": len(durations),
        "parameters": int(sum(p.numel() for p in policy.parameters())),
        "latency_ms": percentiles_ms(durations),
    }


def time_cases(
    cases: list[Case], repeats: list[int], warmup: int, policy_overrides: dict | None = None
) -> list[dict]:
    """Latency of one ``predict_chunk`` call (batch 1) per case, ``repeats[i]`` timed calls for case i.

    The cases are timed round-robin (one call of each in turn), so a change of machine load during the run
    affects every case alike and the ratios between cases stay meaningful on a shared machine.
    """
    import torch

    policies = []
    for case in cases:
        torch.manual_seed(0)  # one architecture, one set of weights: a case and its eager reference match
        policies.append(build_policy(case, policy_overrides))
    observations = [random_obs(p.obs_spec, 1, p.n_obs_steps) for p in policies]
    durations: list[list[float]] = [[] for _ in cases]
    with torch.inference_mode():
        for round_ in range(warmup + max(repeats)):
            for i, (case, policy, obs) in enumerate(zip(cases, policies, observations, strict=True)):
                if round_ >= warmup + repeats[i]:
                    continue
                start = time.perf_counter()
                chunk = policy.predict_chunk(obs, steps=case.steps)
                if round_ >= warmup:
                    durations[i].append(time.perf_counter() - start)
                assert chunk.shape == (1, policy.horizon, ACTION_DIM)
    return [case_result(c, p, d) for c, p, d in zip(cases, policies, durations, strict=True)]


def time_case(case: Case, repeats: int, warmup: int, policy_overrides: dict | None = None) -> dict:
    """Latency figures of a single case (see :func:`time_cases`)."""
    return time_cases([case], [repeats], warmup, policy_overrides)[0]


def machine() -> dict:
    """Where the figures come from: the shared machine facts plus torch's version and threads."""
    import torch

    from manip.bench.commands import machine as base_machine

    return {
        **base_machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }


def headline(results: list[dict]) -> dict[str, float]:
    """MeanFlow-1 p50 / DDIM-10 p50 per observation mode (UNet backbone)."""
    ratios = {}
    for mode in ("lowdim", "image"):
        by_label = {r["label"]: r for r in results if r["obs_mode"] == mode}
        meanflow, ddim = by_label.get(f"{mode} MeanFlow-1"), by_label.get(f"{mode} DDIM-10")
        if meanflow and ddim:
            ratios[mode] = round(meanflow["latency_ms"]["p50"] / ddim["latency_ms"]["p50"], 3)
    return ratios


def over_eager(results: list[dict]) -> dict[str, float]:
    """p50 of each case over the p50 of its eager reference (same label plus `` eager``), where both ran."""
    by_label = {r["label"]: r for r in results}
    return {
        label: round(r["latency_ms"]["p50"] / by_label[f"{label} eager"]["latency_ms"]["p50"], 3)
        for label, r in by_label.items()
        if f"{label} eager" in by_label
    }


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``manip bench inference`` (the dispatcher adds ``--json``)."""
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per case (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--quick", action="store_true", help="skip the DDPM-100 cases")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated observation modes (default {','.join(MODES)})",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")


def run(args: argparse.Namespace) -> dict:
    """Run every case; print a table unless ``args.json``; return the figures as a JSON-ready dict."""
    from manip.core.errors import ManipError

    repeats, warmup = int(getattr(args, "repeats", 10)), int(getattr(args, "warmup", 2))
    if repeats < 1 or warmup < 0:
        raise ManipError(
            f"bench inference: --repeats must be >= 1 and --warmup >= 0 (got {repeats}, {warmup})"
        )
    modes = tuple(m.strip() for m in str(getattr(args, "modes", ",".join(MODES))).split(",") if m.strip())
    if not modes or set(modes) - set(MODES):
        raise ManipError(f"bench inference: --modes takes a subset of {','.join(MODES)} (got {modes})")
    threads = getattr(args, "threads", None)
    if threads is not None:
        if int(threads) < 1:
            raise ManipError(f"bench inference: --threads must be >= 1 (got {threads})")
        import torch

        torch.set_num_threads(int(threads))
    quiet = bool(getattr(args, "json", False))
    cases = default_cases(quick=bool(getattr(args, "quick", False)), modes=modes)
    # DDPM-100 costs 10× DDIM-10: a quarter of the repeats keeps the default run short.
    counts = [max(3, repeats // 4) if case.steps >= 100 else repeats for case in cases]
    results = time_cases(cases, counts, warmup)
    report = {
        "benchmark": "inference",
        "batch": 1,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cases": results,
        "headline_meanflow1_over_ddim10": headline(results),
        "over_eager": over_eager(results),
    }
    if not quiet:
        print(format_report(report))
    return report


def format_report(report: dict) -> str:
    """A human-readable table of :func:`run`'s figures."""
    lines = [f"{'case':<34} {'min ms':>9} {'p50 ms':>9} {'p99 ms':>9} {'n':>4}"]
    for r in report["cases"]:
        lat = r["latency_ms"]
        lines.append(
            f"{r['label']:<34} {lat['min']:>9.2f} {lat['p50']:>9.2f} {lat['p99']:>9.2f} {r['repeats']:>4}"
        )
    for mode, ratio in report["headline_meanflow1_over_ddim10"].items():
        lines.append(f"headline ({mode}): MeanFlow-1 / DDIM-10 latency = {ratio:.3f}")
    for label, ratio in report.get("over_eager", {}).items():
        lines.append(f"{label}: latency / its eager reference (p50) = {ratio:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    from manip.bench.commands import standalone

    raise SystemExit(standalone("inference"))
