"""ONE trainer for every policy: AdamW, cosine LR with warm-up, EMA, gradient clipping, bf16 autocast on CUDA,
DDP under ``torchrun``, TensorBoard scalars, periodic rollouts keeping the top-k checkpoints, exact resume.

Run directory layout::

    RUN_DIR/checkpoint/        the final policy (EMA weights when EMA is on) — a CKPT
    RUN_DIR/state/             exact-resume state (safetensors + JSON), rewritten every ``save_every`` steps
    RUN_DIR/top/step_NNNNNNN/  the ``top_k`` best checkpoints by rollout success rate (when rollouts run)
    RUN_DIR/tb/                TensorBoard scalars
    RUN_DIR/metrics.jsonl      the same scalars, one JSON object per logged step

The data order depends only on ``seed`` and the step (see :class:`StepBatchSampler`), so resuming from step
``k`` continues exactly where an uninterrupted run would be. Rollouts go through an injected callback, so this
module never imports ``sim``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import DataLoader, Dataset, Sampler

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.policies.checkpoint import save_pretrained
from manip.policies.ema import EMA
from manip.policies.train_state import load_train_state, save_train_state

#: ``rollout(policy, step) -> {"success_rate": float, ...}``; the policy passed is the one that would be exported.
RolloutFn = Callable[[torch.nn.Module, int], dict]


class TrainerConfig(StrictConfig):
    """Optimisation, EMA, logging, checkpointing and rollout settings (``num_threads``: torch CPU threads)."""

    steps: int = 20000
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 500
    grad_clip: float | None = 1.0
    ema: bool = True
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999
    bf16: bool = True
    seed: int = 0
    log_every: int = 100
    save_every: int = 1000
    rollout_every: int = 0
    top_k: int = 3
    num_workers: int = 0
    num_threads: int | None = Field(None, ge=1)
    device: str = "auto"


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress_ = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_)))

    return factor


class StepBatchSampler(Sampler[list[int]]):
    """Batches of indices determined by ``(seed, step)`` alone.

    The index stream is the concatenation of permutations ``randperm(size)`` seeded ``seed + epoch``; step ``s``
    takes positions ``s * batch_size ...`` of it (so a dataset smaller than a batch works too). With ``weights``
    (a probability per index, e.g. :func:`manip.data.mixture.task_mixture_weights`) step ``s`` instead draws its batch
    with replacement from a generator seeded by ``(seed, s)``. Yields the batches for steps ``start, start+1,
    ...``; with DDP each rank takes its share of each global batch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        start: int,
        rank: int = 0,
        world: int = 1,
        weights: np.ndarray | None = None,
    ):
        if size < 1:
            raise ManipError("the dataset has no samples to train on")
        self.size, self.batch_size, self.seed, self.start = size, batch_size, seed, start
        self.rank, self.world = rank, world
        self._perm_epoch, self._perm = -1, torch.empty(0, dtype=torch.long)
        self.weights = None
        if weights is not None:
            weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
            if weights.shape != (size,) or not torch.isfinite(weights).all() or (weights < 0).any():
                raise ManipError(f"sampling weights must be {size} finite non-negative numbers")
            if weights.sum() <= 0:
                raise ManipError("sampling weights are all zero")
            self.weights = weights

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            self._perm = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))
            self._perm_epoch = epoch
        return self._perm

    def batch(self, step: int) -> list[int]:
        """The global batch of ``step``."""
        if self.weights is not None:
            generator = torch.Generator().manual_seed((self.seed << 32) + step)
            return torch.multinomial(
                self.weights, self.batch_size, replacement=True, generator=generator
            ).tolist()
        out: list[int] = []
        position = step * self.batch_size
        while len(out) < self.batch_size:
            epoch, offset = divmod(position, self.size)
            taken = self._permutation(epoch)[offset : offset + self.batch_size - len(out)].tolist()
            out += taken
            position += len(taken)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            yield self.batch(step)[self.rank :: self.world]
            step += 1

    def __len__(self) -> int:  # effectively infinite; DataLoader only needs a number
        return 2**62


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _to_device(value, device: torch.device):
    if torch.is_tensor(value):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


class Trainer:
    """Trains ``policy`` on ``dataset`` (items ``{"obs": {...}, "action": ...}``) into ``out_dir``."""

    def __init__(
        self,
        policy: torch.nn.Module,
        dataset: Dataset,
        config: TrainerConfig,
        out_dir: str | Path,
        rollout: RolloutFn | None = None,
        quiet: bool = False,
        sample_weights: np.ndarray | None = None,
    ):
        self.config = config
        self.sample_weights = sample_weights  # a probability per dataset index; None: uniform epochs
        self.out_dir = Path(out_dir)
        self.rollout = rollout
        self.quiet = quiet
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = _pick_device(config.device, local_rank)
        if config.num_threads:  # on a CPU shared with other jobs, 1 thread avoids OpenMP spin contention
            torch.set_num_threads(config.num_threads)
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(config.seed + self.rank)
        self.policy = policy.to(self.device)
        self.ema = EMA(self.policy, config.ema_power, config.ema_max_decay) if config.ema else None
        self.model = self.policy
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.policy, device_ids=ids)
        self.optimizer = torch.optim.AdamW(
            self.policy.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_with_warmup(config.warmup_steps, config.steps)
        )
        self.dataset = dataset
        self.step = 0
        self.top: list[dict] = []  # [{"step", "success_rate", "path"}], best first

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def export_model(self) -> torch.nn.Module:
        """The weights that get evaluated and exported: the EMA model when EMA is on."""
        return self.ema.model if self.ema is not None else self.policy

    # ---------------------------------------------------------------------------------------- state
    def save_state(self) -> None:
        """Write the exact-resume state to ``RUN_DIR/state``."""
        if self.is_main:
            save_train_state(
                self.out_dir / "state",
                model=self.policy,
                ema=self.ema,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                step=self.step,
                extra={"top": self.top, "world": self.world},
            )

    def resume(self) -> int:
        """Restore from ``RUN_DIR/state``; returns the step reached."""
        self.step, extra = load_train_state(
            self.out_dir / "state",
            model=self.policy,
            ema=self.ema,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
        )
        self.top = list(extra.get("top", []))
        return self.step

    # ------------------------------------------------------------------------------------------- loop
    def _batches(self) -> Iterator[dict]:
        sampler = StepBatchSampler(
            len(self.dataset),
            self.config.batch_size,
            self.config.seed,
            self.step,
            self.rank,
            self.world,
            self.sample_weights,
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.config.num_workers > 0,
            # its own generator: creating the iterator must not draw from the global RNG (exact resume)
            generator=torch.Generator().manual_seed(self.config.seed + self.step),
        )
        for batch in loader:
            yield _to_device(batch, self.device)

    def _train_step(self, batch: dict) -> dict[str, float]:
        use_bf16 = self.config.bf16 and self.device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
        self.model.train()
        with autocast:
            loss, metrics = self.model(batch)
        if not torch.isfinite(loss):
            raise ManipError(f"training diverged at step {self.step}: loss is {float(loss)}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            metrics["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
            )
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            metrics["ema_decay"] = self.ema.update(self.policy)
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        return metrics

    def fit(self, stop_at: int | None = None) -> Path:
        """Train up to ``config.steps`` (or stop early at ``stop_at``, saving state); returns RUN_DIR/checkpoint."""
        stop = min(self.config.steps, stop_at if stop_at is not None else self.config.steps)
        writer = self._writer()
        started, batches = time.perf_counter(), self._batches()
        metrics_file = (self.out_dir / "metrics.jsonl").open("a") if self.is_main else None
        try:
            for _ in progress(range(self.step, stop), desc="train", total=stop - self.step, quiet=self.quiet):
                metrics = self._train_step(next(batches))
                self.step += 1
                if self.is_main and (self.step % self.config.log_every == 0 or self.step == stop):
                    record = {
                        "step": self.step,
                        "elapsed_s": round(time.perf_counter() - started, 3),
                        **metrics,
                    }
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    for key, value in metrics.items():
                        writer.add_scalar(f"train/{key}", value, self.step)
                if self.config.rollout_every and self.step % self.config.rollout_every == 0:
                    self._rollout(writer)
                if self.step % self.config.save_every == 0 or self.step == stop:
                    self.save_state()
        finally:
            if metrics_file is not None:
                metrics_file.close()
            if writer is not None:
                writer.close()
        return self.export()

    def export(self) -> Path:
        """Write the export model to ``RUN_DIR/checkpoint`` and return that path."""
        path = self.out_dir / "checkpoint"
        if self.is_main:
            save_pretrained(self.export_model, path)
        return path

    # --------------------------------------------------------------------------------------- rollouts
    def _rollout(self, writer) -> None:
        if not self.is_main or self.rollout is None:
            return
        model = self.export_model.eval()
        result = self.rollout(model, self.step)
        rate = float(result["success_rate"])
        writer.add_scalar("rollout/success_rate", rate, self.step)
        with (self.out_dir / "rollouts.jsonl").open("a") as f:
            f.write(
                json.dumps({"step": self.step, **{k: v for k, v in result.items() if k != "per_episode"}})
                + "\n"
            )
        path = self.out_dir / "top" / f"step_{self.step:07d}"
        self.top.append({"step": self.step, "success_rate": rate, "path": str(path)})
        self.top.sort(key=lambda e: (-e["success_rate"], -e["step"]))
        if any(e["path"] == str(path) for e in self.top[: self.config.top_k]):
            save_pretrained(model, path)
        for dropped in self.top[self.config.top_k :]:
            shutil.rmtree(dropped["path"], ignore_errors=True)
        self.top = self.top[: self.config.top_k]

    def _writer(self):
        if not self.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.out_dir / "tb"))
