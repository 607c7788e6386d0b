"""``manip bench train``: training throughput (samples/s) per policy, low-dim and image.

Each case builds the default-architecture policy of :mod:`manip.bench.inference` (random weights, random data in
memory) and times full optimisation steps: ``compute_loss`` (normalization, augmentation, encoding, the head's
loss — MeanFlow's includes its JVP), backward, gradient clipping and an AdamW step. Data loading and EMA are not
included (``manip bench data`` measures loading). Figure: ``batch_size × iters / seconds`` after ``warmup``
steps, plus the per-step p50.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from manip.bench.inference import ACTION_DIM, Case, build_policy, machine, percentiles_ms, random_obs

VLA_SMALL = {
    "type": "vla",
    "context": {"d_model": 256, "n_layers": 4, "n_heads": 4, "readouts": 4},
}


def default_cases() -> list[tuple[Case, dict | None]]:
    """Low-dim diffusion/flow/MeanFlow (UNet) and MeanFlow (transformer); image diffusion/MeanFlow; image VLA."""
    return [
        (Case("lowdim", "diffusion", 0), None),
        (Case("lowdim", "flow", 0), None),
        (Case("lowdim", "meanflow", 0), None),
        (Case("lowdim", "meanflow", 0, backbone="transformer"), None),
        (Case("image", "diffusion", 0), None),
        (Case("image", "meanflow", 0), None),
        (Case("image", "flow", 0, backbone="transformer"), VLA_SMALL),
    ]


def case_label(case: Case, overrides: dict | None) -> str:
    name = {"diffusion": "diffusion", "flow": "flow", "meanflow": "MeanFlow"}[case.head]
    kind = "VLA" if overrides and overrides.get("type") == "vla" else case.backbone
    return f"{case.obs_mode} {name} ({kind})"


def random_batch(policy, batch_size: int, seed: int) -> dict:
    """A raw training batch for ``policy``: observations, actions and (for the VLA) instructions."""
    import torch

    obs = random_obs(policy.obs_spec, batch_size, policy.n_obs_steps, seed)
    actions = np.random.default_rng(seed).uniform(-1, 1, (batch_size, policy.horizon, ACTION_DIM))
    batch = {
        "obs": {k: torch.from_numpy(v) for k, v in obs.items()},
        "action": torch.from_numpy(actions.astype(np.float32)),
    }
    if policy.config.type == "vla":
        batch["instruction"] = [
            "lift the cube",
            "pick up the can",
            "stack the red cube on the green cube",
        ] * (batch_size // 3 + 1)
        batch["instruction"] = batch["instruction"][:batch_size]
    return batch


def time_training(case: Case, overrides: dict | None, batch_size: int, iters: int, warmup: int) -> dict:
    """Samples/s of full optimisation steps for one policy."""
    import torch

    torch.manual_seed(0)
    policy = build_policy(case, overrides).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = random_batch(policy, batch_size, seed=0)
    durations = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        loss, _ = policy.compute_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        if i >= warmup:
            durations.append(time.perf_counter() - start)
    return {
        "label": case_label(case, overrides),
        "obs_mode": case.obs_mode,
        "head": case.head,
        "backbone": case.backbone,
        "policy_type": policy.config.type,
        "parameters": int(sum(p.numel() for p in policy.parameters() if p.requires_grad)),
        "batch_size": batch_size,
        "iters": iters,
        "samples_per_s": round(batch_size * iters / sum(durations), 2),
        "step_ms": percentiles_ms(durations),
    }


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``manip bench train`` (the dispatcher adds ``--json``)."""
    parser.add_argument("--batch-size", type=int, default=16, help="samples per step (default 16)")
    parser.add_argument("--iters", type=int, default=3, help="timed steps per policy (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")


def run(args: argparse.Namespace) -> dict:
    """Time every policy; print a table unless ``args.json``; return the figures as a JSON-ready dict."""
    from manip.core.errors import ManipError
    from manip.core.progress import progress

    batch_size = int(getattr(args, "batch_size", 16))
    iters, warmup = int(getattr(args, "iters", 3)), int(getattr(args, "warmup", 1))
    if batch_size < 1 or iters < 1 or warmup < 0:
        raise ManipError("bench train: --batch-size and --iters must be >= 1, --warmup >= 0")
    quiet = bool(getattr(args, "json", False))
    results = [
        time_training(case, overrides, batch_size, iters, warmup)
        for case, overrides in progress(default_cases(), desc="bench train", quiet=quiet, unit="policy")
    ]
    report = {
        "benchmark": "train",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cases": results,
    }
    if not quiet:
        print(format_report(report))
    return report


def format_report(report: dict) -> str:
    """A human-readable table of :func:`run`'s figures."""
    lines = [f"{'policy':<32} {'samples/s':>10} {'step p50 ms':>12} {'batch':>6}"]
    for r in report["cases"]:
        lines.append(
            f"{r['label']:<32} {r['samples_per_s']:>10.2f} {r['step_ms']['p50']:>12.1f} {r['batch_size']:>6}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from manip.bench.commands import standalone

    raise SystemExit(standalone("train"))
