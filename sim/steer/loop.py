"""``manip steer``: noise-space SAC over a frozen policy, from the task's sparse success reward, in parallel sims.

The learner holds the :class:`~manip.policies.steering.policy.SteeredPolicy` (the frozen base + actor + critics) and
answers the chunk requests of ``workers`` simulation processes (:mod:`manip.sim.steer.workers`) in one batched
pass per round. Each answered request closes the transition of that worker's previous request (its features,
noise and chunk, the reward earned since, the new features, and whether the episode ended in success). The
gradient steps due at ``updates_per_transition`` run after the round's chunks are sent, while the workers simulate.
The first ``learning_starts`` chunks use standard normal noise (the base policy's own distribution, clipped to the
bound).

Writes ``OUT/checkpoint/`` (the steered policy: load it with ``manip.policies.load_policy``, evaluate it with
``manip eval --checkpoint``), ``OUT/checkpoints/steps_N/`` every ``save_every`` env steps, and ``OUT/steer.json``
(settings, per-episode outcomes in order, losses; rewritten at every save, ``finished`` once the run is done).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from manip.core.errors import ManipError
from manip.core.progress import progress_enabled
from manip.core.provenance import code_provenance
from manip.sim.steer.workers import EnvPool

SUPPORTED_HEADS = ("flow", "meanflow", "diffusion")


@dataclass
class SteerSettings:
    """What ``manip steer`` was asked for (recorded in ``steer.json``)."""

    env_steps: int
    workers: int = 2
    variant: str = "sac"
    seed: int = 0
    horizon: int | None = None
    noise_bound: float = 1.5
    hidden: tuple[int, ...] = (256, 256)
    save_every: int = 0
    device: str = "cpu"
    deploy: str = "sample"
    action_steps: int | None = None
    """Actions executed per decision (None: the base checkpoint's ``n_action_steps``)."""
    sac: dict = field(default_factory=dict)


def build_steered_policy(checkpoint: str | Path, settings: SteerSettings):
    """A fresh steered policy around the base checkpoint (its weights copied in, frozen)."""
    from manip.policies.checkpoint import load_policy, read_metadata, set_action_semantics
    from manip.policies.steering.policy import SteeredConfig, SteeredPolicy
    from manip.real.client.sources import checkpoint_id

    meta = read_metadata(checkpoint)
    if meta.get("policy_type") != "chunk":
        raise ManipError(f"{checkpoint}: steering needs a chunk policy, not '{meta.get('policy_type')}'")
    head = dict(meta["policy"].get("head") or {})
    if head.get("name") not in SUPPORTED_HEADS or head.get("sampler") == "ddpm":
        raise ManipError(
            f"{checkpoint}: steering needs a deterministic map from noise to chunk (head flow, meanflow or "
            f"diffusion with DDIM), not '{head.get('name')}'"
        )
    if settings.action_steps is not None:
        meta["policy"] = {
            **meta["policy"],
            "n_action_steps": _action_steps(meta["policy"], settings.action_steps),
        }
    base = load_policy(checkpoint, meta=meta)
    config = SteeredConfig(
        base=meta, base_checkpoint=checkpoint_id(checkpoint), base_path=str(Path(checkpoint).resolve()),
        variant=settings.variant, noise_bound=settings.noise_bound, hidden=tuple(settings.hidden),
        deploy=settings.deploy,
    )  # fmt: skip
    torch.manual_seed(settings.seed)
    policy = SteeredPolicy(config)
    policy.base.load_state_dict(base.state_dict())
    set_action_semantics(policy, base.control_rate, base.action_semantics)
    return policy.to(settings.device)


def _action_steps(policy: dict, steps: int) -> int:
    """``--action-steps``, checked against the chunk: at least 1, at most the actions from "now" to its end."""
    executable = int(policy["horizon"]) - (int(policy.get("n_obs_steps") or 1) - 1)
    if not 1 <= steps <= executable:
        raise ManipError(f"--action-steps {steps}: pass 1 to {executable} (the chunk's actions from now on)")
    return steps


class Learner:
    """Features, noise choice and chunks for a batch of requests; the replay buffer and the SAC updates."""

    def __init__(self, policy, sac_config, seed: int):
        from manip.policies.steering.sac import NoiseSAC, ReplayBuffer

        self.policy = policy
        self.config = sac_config
        self.sac = NoiseSAC(policy, sac_config)
        self.replay = ReplayBuffer(sac_config.replay_size, policy.state_dim, policy.actor.dim, seed)
        self.generator = torch.Generator(device=policy.device).manual_seed(seed)
        self.decisions = 0
        self.updates_due = 0.0
        self.updates = 0
        self.last_metrics: dict[str, float] = {}

    @torch.no_grad()
    def features(self, windows: list[dict]) -> torch.Tensor:
        """The base encoder's features ``(B, C)`` of observation windows ``{key: (n_obs_steps, ...)}``."""
        policy = self.policy
        batch = {
            k: torch.from_numpy(np.stack([np.asarray(w[k]) for w in windows])).to(policy.device)
            for k in policy.obs_spec.names
        }
        return policy.encode(policy.prepare_obs(batch)).float()

    @torch.no_grad()
    def act(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Noises, normalized chunks and unnormalized actions ``(B, H, A)`` for ``states``."""
        policy = self.policy
        if self.decisions < self.config.learning_starts:
            bound = policy.actor.bound
            noise = torch.randn(
                states.shape[0], *policy.actor.noise_shape, generator=self.generator, device=policy.device
            ).clamp(-bound, bound)
        else:
            noise = policy.actor.sample(states, self.generator)[0]
        self.decisions += states.shape[0]
        chunks = policy.chunks_from_noise(states, noise)
        actions = policy.normalizer.unnormalize({"action": chunks})["action"]
        return noise, chunks, actions.float().cpu().numpy()

    def add(self, previous, reward: float, state: torch.Tensor, done: bool) -> None:
        prev_state, noise, chunk = previous
        self.replay.add(
            prev_state.cpu().numpy(),
            noise.cpu().numpy(),
            chunk.cpu().numpy(),
            reward,
            state.cpu().numpy(),
            done,
        )
        self.updates_due += self.config.updates_per_transition

    def train(self) -> None:
        """The gradient steps that are due, once enough transitions are gathered."""
        ready = self.replay.size >= max(self.config.learning_starts, 1)
        while ready and self.updates_due >= 1.0:
            self.last_metrics = self.sac.update(self.replay)
            self.updates += 1
            self.updates_due -= 1.0
        if not ready:
            self.updates_due = 0.0


def steer(
    checkpoint: str | Path, task: str, out: str | Path, settings: SteerSettings, quiet: bool = False
) -> dict:
    """Run noise-space SAC for ``settings.env_steps`` env steps; write the checkpoint and ``steer.json``."""
    from manip.policies.serving import LocalPolicySource
    from manip.policies.steering.sac import SACConfig
    from manip.real.client.sources import checkpoint_id
    from manip.sim.tasks import get_task

    get_task(task)
    if settings.env_steps < 1:
        raise ManipError(f"--env-steps must be >= 1, got {settings.env_steps}")
    if settings.variant not in ("sac", "na"):
        raise ManipError(f"--variant must be sac or na, got '{settings.variant}'")
    if settings.deploy not in ("sample", "mode"):
        raise ManipError(f"--deploy must be sample or mode, got '{settings.deploy}'")
    out = Path(out)
    sac_config = SACConfig(**settings.sac)
    policy = build_steered_policy(checkpoint, settings)
    learner = Learner(policy, sac_config, settings.seed)
    metadata = LocalPolicySource(policy, device=settings.device).metadata
    episodes: list[dict] = []
    env_steps, next_seed, next_save = 0, settings.seed, settings.save_every or None
    started = time.perf_counter()
    provenance = code_provenance()  # the code the run started with, also in the part-way reports
    show = progress_enabled(quiet)

    def write_report(checkpoint_dir: Path, finished: bool) -> dict:
        """Save the policy to ``checkpoint_dir`` and write ``steer.json`` (also part-way, at every save)."""
        policy.save_pretrained(checkpoint_dir)
        report = {
            "task": task,
            "finished": finished,
            "base_checkpoint": checkpoint_id(checkpoint),
            "checkpoint": str(checkpoint_dir),
            "checkpoint_id": checkpoint_id(checkpoint_dir),
            "env_steps": env_steps,
            "episodes": len(episodes),
            "successes": sum(e["success"] for e in episodes),
            "per_episode": episodes,
            "transitions": learner.replay.size,
            "updates": learner.updates,
            "last_losses": learner.last_metrics,
            "wall_s": round(time.perf_counter() - started, 3),
            "settings": {**asdict(settings), "sac": sac_config.model_dump(mode="json")},
            **provenance,
        }
        # replaced in one step: a run stopped mid-write keeps the last report
        partial = out / "steer.json.partial"
        partial.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(partial, out / "steer.json")
        return report

    pool = EnvPool(task, metadata, settings.workers, settings.horizon)
    try:
        previous: list = [None] * len(pool)
        for worker in range(len(pool)):
            pool.send(worker, {"type": "reset", "seed": next_seed})
            next_seed += 1
        while True:
            messages = [pool.receive(worker) for worker in range(len(pool))]
            env_steps += sum(int(m["steps"]) for m in messages)
            states = learner.features([m["obs"] for m in messages])
            asking = []
            for worker, message in enumerate(messages):
                ended = message["type"] == "end"
                if previous[worker] is not None:
                    learner.add(
                        previous[worker],
                        float(message["reward"]),
                        states[worker],
                        ended and bool(message["success"]),
                    )
                if ended:
                    episodes.append(
                        {
                            "worker": worker,
                            "success": bool(message["success"]),
                            "env_steps": env_steps,
                            "updates": learner.updates,
                        }
                    )
                    previous[worker] = None
                else:
                    asking.append(worker)
            last_round = env_steps >= settings.env_steps
            if not last_round:
                for worker, message in enumerate(messages):
                    if message["type"] == "end":
                        pool.send(worker, {"type": "reset", "seed": next_seed})
                        next_seed += 1
                if asking:
                    noise, chunks, actions = learner.act(states[asking])
                    for row, worker in enumerate(asking):
                        previous[worker] = (states[worker], noise[row], chunks[row])
                        pool.send(worker, {"type": "chunk", "chunk": actions[row]})
            learner.train()  # while the workers run the chunks just sent
            if next_save is not None and env_steps >= next_save:
                write_report(out / "checkpoints" / f"steps_{env_steps}", finished=False)
                next_save = (env_steps // settings.save_every + 1) * settings.save_every
            if last_round:
                break
            if show:
                done = sum(e["success"] for e in episodes[-20:])
                print(
                    f"\rsteer: {env_steps}/{settings.env_steps} env steps, {len(episodes)} episodes, "
                    f"last-20 success {done}/{min(len(episodes), 20)}   ",
                    end="", flush=True,
                )  # fmt: skip
    finally:
        pool.close()
        if show:
            print()
    policy.eval()
    policy.drop_chunk_critic()  # training only: the final checkpoint runs without it
    return write_report(out / "checkpoint", finished=True)
