"""SAC in the latent-noise MDP of a frozen policy (DSRL, Wagenmaker et al. 2025), with the noise-aliasing variant.

One decision = one chunk: the state is the base encoder's features of the observation window, the action is the
noise ``w`` the base head turns into the chunk, the reward is what the executed part of the chunk earned (the task's
sparse success reward) and the next state is the features at the next chunk request.

- ``sac`` (DSRL-SAC): twin critics ``Q(s, w)`` learned by TD on the replayed noises; the actor maximizes them with
  SAC's entropy bonus (temperature tuned toward ``target_entropy``).
- ``na`` (DSRL-NA, noise aliasing): twin critics ``Q_A(s, a)`` on the executed chunk ``a = base(s, w)`` learned by TD
  (next action ``base(s', actor(s'))``), and the noise critic distilled from it on fresh noises
  ``w ~ N(0, I)``: ``Q(s, w) ≈ Q_A(s, base(s, w))``. Noises that alias to the same chunk share a value, and the
  noise critic learns from noises the actor never picked. The actor maximizes ``Q(s, w)``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from manip.core.config import StrictConfig
from manip.core.errors import ManipError


class SACConfig(StrictConfig):
    """Discount (per chunk), target smoothing, learning rates, batch, temperature and update ratio."""

    gamma: float = Field(0.99, gt=0, le=1)
    tau: float = Field(0.005, gt=0, le=1)
    lr: float = Field(3e-4, gt=0)
    batch_size: int = Field(256, ge=1)
    init_temperature: float = Field(0.1, gt=0)
    target_entropy_per_dim: float = -0.5
    """Target entropy = this × the noise dimensions."""
    updates_per_transition: float = Field(1.0, gt=0)
    learning_starts: int = Field(64, ge=0)
    """Transitions gathered with random noise ``N(0, I)`` (clipped to the bound) before the actor acts."""
    replay_size: int = Field(200_000, ge=1)
    entropy_backup: bool = False
    """Add the next state's entropy bonus to the TD target (soft Q, as in SAC's paper). Off by default: with a sparse
    success reward of at most 1 and a noise of 100+ dimensions, the backed-up bonus (``-alpha * log_prob`` summed
    over the discounted future) grows the values to tens and buries the success signal in their TD error; without
    it the critic learns the discounted success alone and the entropy acts only through the actor's objective."""


class ReplayBuffer:
    """A fixed-size ring of transitions ``(state, noise, chunk, reward, next_state, done)`` in numpy."""

    def __init__(self, capacity: int, state_dim: int, noise_dim: int, seed: int = 0):
        self.capacity, self.size, self.next = int(capacity), 0, 0
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros((capacity, state_dim), np.float32)
        self.next_state = np.zeros((capacity, state_dim), np.float32)
        self.noise = np.zeros((capacity, noise_dim), np.float32)
        self.chunk = np.zeros((capacity, noise_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)

    def add(self, state, noise, chunk, reward: float, next_state, done: bool) -> None:
        i = self.next
        self.state[i], self.noise[i], self.chunk[i] = state, np.ravel(noise), np.ravel(chunk)
        self.reward[i], self.next_state[i], self.done[i] = reward, next_state, float(done)
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, device) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, size=batch)
        fields = ("state", "noise", "chunk", "reward", "next_state", "done")
        return {name: torch.as_tensor(getattr(self, name)[idx], device=device) for name in fields}


def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.lerp_(s, tau)


class NoiseSAC:
    """The learner: updates ``policy.actor`` / ``policy.critic`` (and ``policy.action_critic`` for ``na``)."""

    def __init__(self, policy, config: SACConfig):
        self.policy, self.config = policy, config
        self.variant = policy.config.variant
        self.noise_dim = policy.actor.dim
        self.target_entropy = config.target_entropy_per_dim * self.noise_dim
        device = policy.device
        self.log_alpha = torch.tensor(
            float(np.log(config.init_temperature)), device=device, requires_grad=True
        )
        self.actor_opt = torch.optim.Adam(policy.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(policy.critic.parameters(), lr=config.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.lr)
        if self.variant == "na" and policy.action_critic is None:
            raise ManipError(
                "this steered checkpoint was saved without its chunk critic: it runs, but cannot train"
            )
        td_critic = policy.action_critic if self.variant == "na" else policy.critic
        self.td_critic, self.td_target = td_critic, copy.deepcopy(td_critic).requires_grad_(False)
        if self.variant == "na":
            self.action_opt = torch.optim.Adam(td_critic.parameters(), lr=config.lr)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def _chunks(self, state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.policy.chunks_from_noise(state, noise).flatten(1)

    @torch.no_grad()
    def td_targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``r + gamma * (1 - done) * min Q_target(s', a')`` with ``a'`` from the actor at ``s'`` (its noise, or for
        ``na`` the chunk it maps to), minus ``alpha * log_prob(a')`` inside the bracket with ``entropy_backup``."""
        next_noise, next_logp = self.policy.actor.sample(batch["next_state"])
        next_input = self._chunks(batch["next_state"], next_noise) if self.variant == "na" else next_noise
        next_q = self.td_target(batch["next_state"], next_input).min(dim=-1).values
        if self.config.entropy_backup:
            next_q = next_q - self.alpha * next_logp
        return batch["reward"] + self.config.gamma * (1 - batch["done"]) * next_q

    def _td_step(self, batch: dict[str, torch.Tensor], optimizer) -> float:
        target = self.td_targets(batch)
        value_input = batch["chunk"] if self.variant == "na" else batch["noise"]
        q = self.td_critic(batch["state"], value_input)
        loss = F.mse_loss(q, target[:, None].expand_as(q))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        soft_update(self.td_target, self.td_critic, self.config.tau)
        return float(loss.detach())

    def _distill_step(self, state: torch.Tensor) -> float:
        """``na``: fit the noise critic to the chunk critic on fresh standard-normal noises (clipped)."""
        bound = self.policy.actor.bound
        noise = torch.randn(state.shape[0], *self.policy.actor.noise_shape, device=state.device).clamp(
            -bound, bound
        )
        with torch.no_grad():
            target = self.td_critic(state, self._chunks(state, noise))
        loss = F.mse_loss(self.policy.critic(state, noise), target)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return float(loss.detach())

    def update(self, replay: ReplayBuffer) -> dict[str, float]:
        """One gradient step of every network on a replayed batch; returns the losses."""
        batch = replay.sample(self.config.batch_size, self.policy.device)
        metrics = {}
        if self.variant == "na":
            metrics["chunk_critic_loss"] = self._td_step(batch, self.action_opt)
            metrics["critic_loss"] = self._distill_step(batch["state"])
        else:
            metrics["critic_loss"] = self._td_step(batch, self.critic_opt)
        noise, logp = self.policy.actor.sample(batch["state"])
        q = self.policy.critic(batch["state"], noise).min(dim=-1).values
        actor_loss = (self.alpha.detach() * logp - q).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        metrics.update(
            actor_loss=float(actor_loss.detach()),
            alpha=float(self.alpha.detach()),
            q=float(q.detach().mean()),
        )
        return metrics
