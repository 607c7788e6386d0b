"""``manip bench train``: training throughput (samples/s) per policy, low-dim and image.

Each case builds the default-architecture policy of :mod:`manip.bench.inference` (random weights, random data in
memory) and times full optimisation steps: ``compute_loss`` (normalization, augmentation, encoding, the head's
loss — MeanFlow's includes its JVP), backward, gradient clipping and an AdamW step. Data loading and EMA are not
included (``manip bench data`` measures loading). Figure: ``batch_size × iters / seconds`` after ``warmup``
steps, plus the per-step p50.

Data supply (skip with ``--no-data``): an image store (two 84×84 cameras + proprio, ``--data-episodes`` episodes of
100 steps, written under a temporary directory) read from disk the way training reads it: ``ChunkDataset`` with
the frames left in the store (``frame_memory_bytes=0``), random batches of ``--batch-size`` windows through a torch
``DataLoader`` with 0 and ``--data-workers`` persistent worker processes; plus, for reference, the same windows
read through zarr (one zarr call per run of steps in a batch, or per window and key one window at a time). ``supply_over_demand``: windows/s read from disk over the
windows/s one optimisation step of the image diffusion policy consumes (its samples/s above).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from manip.bench.inference import ACTION_DIM, Case, build_policy, machine, random_obs
from manip.sim.stats import percentiles_ms

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


def time_training(
    case: Case,
    overrides: dict | None,
    batch_size: int,
    iters: int,
    warmup: int,
    device: str = "cpu",
    bf16: bool = False,
) -> dict:
    """Samples/s of full optimisation steps for one policy (``bf16``: autocast on CUDA, as the trainer does)."""
    from contextlib import nullcontext

    import torch

    torch.manual_seed(0)
    policy = build_policy(case, overrides).to(device).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = random_batch(policy, batch_size, seed=0)
    batch = {k: (v.to(device) if k == "action" else v) for k, v in batch.items()}
    batch["obs"] = {k: v.to(device) for k, v in batch["obs"].items()}
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and cuda else nullcontext()
    durations = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        with autocast:
            loss, _ = policy.compute_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
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
        "device": device,
        "bf16": bool(bf16 and cuda),
        "iters": iters,
        "samples_per_s": round(batch_size * iters / sum(durations), 2),
        "step_ms": percentiles_ms(durations),
    }


def image_store(path, episodes: int, steps: int = 100, seed: int = 0):
    """An on-disk store of ``episodes`` synthetic image episodes (``manip bench data``'s ``cams84`` case)."""
    from manip.bench.data import make_episode
    from manip.data.store import EpisodeStore

    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    for i in range(episodes):
        store.add_episode(
            make_episode("cams84", steps, rng, "synthetic", seed + i), {"task": "Lift", "seed": i}
        )
    return EpisodeStore.open(path)


def data_supply(batch_size: int, batches: int, workers: int, episodes: int, seed: int = 0) -> dict:
    """Windows/s of image training batches read from disk (frames not held in memory).

    In-process readers (batched through a ``DataLoader`` without workers; for reference, the sampler reading every
    frame through zarr, batched and one window at a time as before direct shard reads) are timed a batch each in
    turn, round-robin. Worker processes prefetch while others run, so the ``DataLoader`` with
    ``workers`` persistent workers is timed alone afterwards: ``batches`` batches drawn back to back.
    """
    import tempfile
    from pathlib import Path

    import torch

    from manip.bench.data import CAMERAS
    from manip.data.dataset import ChunkDataset
    from manip.data.sampler import SequenceSampler

    def loader(num_workers: int):
        sampler = torch.utils.data.RandomSampler(
            dataset, replacement=True, generator=torch.Generator().manual_seed(seed + num_workers)
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )

    with tempfile.TemporaryDirectory(prefix="manip-bench-train-") as tmp:
        store = image_store(Path(tmp) / "images.zarr", episodes, seed=seed)
        keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", *CAMERAS]
        dataset = ChunkDataset(store, keys, horizon=16, n_obs_steps=2, n_action_steps=8, frame_memory_bytes=0)
        sampler_keys = [*keys, "action"]
        window = dict(first_k=dict.fromkeys(keys, 2), frame_memory_bytes=0)
        through_zarr = SequenceSampler(store, sampler_keys, 16, 2, 8, **window, direct_reads=False)
        in_process = iter(loader(0))
        order = np.random.default_rng(seed).integers(0, len(dataset), (batches + 1, batch_size))
        readers = {
            "batched, 0 workers": lambda b: next(in_process),
            "zarr reads, batched": lambda b: through_zarr.sample_batch(order[b]),
            "zarr reads, one window at a time": lambda b: [through_zarr.sample(int(i)) for i in order[b]],
        }
        seconds = dict.fromkeys(readers, 0.0)
        for b in range(batches + 1):  # the first round warms up
            for name, read in readers.items():
                start = time.perf_counter()
                read(b)
                if b:
                    seconds[name] += time.perf_counter() - start
        if workers > 0:
            batches_of_workers = iter(loader(workers))
            next(batches_of_workers)  # starts the workers
            start = time.perf_counter()
            for _ in range(batches):
                next(batches_of_workers)
            seconds[f"batched, {workers} workers"] = time.perf_counter() - start
            del batches_of_workers
    return {
        "store": f"{episodes} episodes x 100 steps, 2 cameras 84x84 + proprio, frames read from disk",
        "window": {"horizon": 16, "n_obs_steps": 2},
        "batch_size": batch_size,
        "batches": batches,
        "windows_per_s": {name: round(batch_size * batches / s, 1) for name, s in seconds.items()},
    }


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``manip bench train`` (the dispatcher adds ``--json``)."""
    parser.add_argument("--batch-size", type=int, default=16, help="samples per step (default 16)")
    parser.add_argument("--iters", type=int, default=3, help="timed steps per policy (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--no-data", action="store_true", help="skip the data-supply measurement")
    parser.add_argument("--data-batches", type=int, default=20, help="timed batches per reader (default 20)")
    parser.add_argument("--data-workers", type=int, default=2, help="DataLoader workers compared with 0")
    parser.add_argument("--data-episodes", type=int, default=20, help="episodes in the image store")


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
    if not getattr(args, "no_data", False):
        batches, workers = int(getattr(args, "data_batches", 20)), int(getattr(args, "data_workers", 2))
        episodes = int(getattr(args, "data_episodes", 20))
        if batches < 1 or workers < 0 or episodes < 1:
            raise ManipError(
                "bench train: --data-batches and --data-episodes must be >= 1, --data-workers >= 0"
            )
        report["data"] = supply_report(data_supply(batch_size, batches, workers, episodes), results)
    if not quiet:
        print(format_report(report))
    return report


IMAGE_POLICY = "image diffusion (unet1d)"


def supply_report(supply: dict, results: list[dict]) -> dict:
    """``supply`` plus what the image training step consumes and the ratio of the best reader to it."""
    demand = next((r["samples_per_s"] for r in results if r["label"] == IMAGE_POLICY), None)
    best = max(supply["windows_per_s"].values())
    return {
        **supply,
        "consumer": IMAGE_POLICY,
        "step_consumes_windows_per_s": demand,
        "supply_over_demand": round(best / demand, 1) if demand else None,
    }


def format_report(report: dict) -> str:
    """A human-readable table of :func:`run`'s figures."""
    lines = [f"{'policy':<32} {'samples/s':>10} {'step p50 ms':>12} {'batch':>6}"]
    for r in report["cases"]:
        lines.append(
            f"{r['label']:<32} {r['samples_per_s']:>10.2f} {r['step_ms']['p50']:>12.1f} {r['batch_size']:>6}"
        )
    data = report.get("data")
    if data:
        lines.append(f"image windows read from disk ({data['store']}):")
        for name, rate in data["windows_per_s"].items():
            lines.append(f"  {name:<30} {rate:>10.1f} windows/s")
        lines.append(
            f"  the {data['consumer']} step consumes {data['step_consumes_windows_per_s']} windows/s; "
            f"supply / demand = {data['supply_over_demand']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from manip.bench.commands import standalone

    raise SystemExit(standalone("train"))
