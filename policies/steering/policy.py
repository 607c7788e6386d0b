"""The ``steered`` policy type: a frozen base policy whose initial noise comes from a learned actor.

The checkpoint embeds the base policy (its ``config.json`` content under ``policy.base``, its weights under
``base.*`` in ``model.safetensors``) next to the actor and critic, and names where it came from
(``base_checkpoint``: its checkpoint id, ``base_path``), so ``manip eval --checkpoint``, ``manip serve`` and the robot
node load it like any other checkpoint and need nothing else. ``predict_chunk`` runs the base's observation transform
and encoder, the actor turns the features into a noise chunk (a draw, or its mode with ``deploy: mode``) and the
base's head turns that noise into actions. With
``sampling.candidates: N`` the actor draws N noises and the critic's value picks one (selector ``auto``/``critic``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.base import Policy
from manip.policies.config import POLICY_TYPES
from manip.policies.sampling import SamplingConfig
from manip.policies.steering.networks import NoiseActor, TwinCritic


class SteeredConfig(StrictConfig):
    """The embedded base policy (its checkpoint metadata) and the actor/critic architecture."""

    type: Literal["steered"] = "steered"
    base: dict[str, Any]
    """The base checkpoint's ``config.json`` content."""
    base_checkpoint: str = ""
    """The base checkpoint's id (provenance)."""
    base_path: str = ""
    """Where the base checkpoint was read from (provenance; the weights are embedded)."""
    variant: Literal["sac", "na"] = "sac"
    """``sac``: the critic values noises directly (DSRL); ``na``: noise aliasing (DSRL-NA), a critic on the
    executed chunks distilled into the noise critic."""
    noise_bound: float = Field(1.5, gt=0)
    """The actor's noise lies in ``[-noise_bound, noise_bound]`` per dimension."""
    hidden: tuple[int, ...] = (256, 256)
    deploy: Literal["sample", "mode"] = "sample"
    """The noise ``predict_chunk`` feeds the base: a draw from the actor (as in training; reproducible per episode
    through the sampling generator) or the actor's deterministic mode. Early in training the mode sits near the
    noise ``0``, which a one-step head may turn into a poor "average" chunk, so ``sample`` is the default."""
    sampling: SamplingConfig = SamplingConfig()
    chunk_critic: bool = True
    """``na``: whether the checkpoint holds the chunk critic. Only training uses it, so ``manip steer`` leaves it out
    of its final checkpoint (the noise critic, which selection uses, stays)."""


@POLICY_TYPES.register("steered", SteeredConfig)
class SteeredPolicy(Policy):
    """Frozen ``base`` policy + :class:`NoiseActor` + noise critic (+ chunk critic for ``na``)."""

    def __init__(self, config: SteeredConfig, obs_spec=None, action_spec=None, normalizer=None):
        nn.Module.__init__(self)
        from manip.policies.checkpoint import build_policy

        self.config = config
        self.base = build_policy(config.base, where="policy.base")
        if getattr(self.base, "encoder", None) is None or not hasattr(self.base.encoder, "cond_dim"):
            raise ManipError(
                f"policy.base: steering needs a chunk policy (encoder + head), not '{self.base.config.type}'"
            )
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.obs_spec, self.action_spec = self.base.obs_spec, self.base.action_spec
        self.normalizer = self.base.normalizer
        self.takes_instruction = self.base.takes_instruction
        self.state_dim = int(self.base.encoder.cond_dim)
        noise_shape = (self.base.horizon, self.base.action_dim)
        noise_dim = noise_shape[0] * noise_shape[1]
        self.actor = NoiseActor(self.state_dim, noise_shape, config.hidden, config.noise_bound)
        self.critic = TwinCritic(self.state_dim, noise_dim, config.hidden)
        self.action_critic = (
            TwinCritic(self.state_dim, noise_dim, config.hidden)
            if config.variant == "na" and config.chunk_critic
            else None
        )

    def drop_chunk_critic(self) -> None:
        """``na``: leave the training-only chunk critic out of this policy and of the checkpoints it saves from now
        on (``sac`` has none: nothing changes)."""
        if self.action_critic is not None:
            self.action_critic = None
            self.config = self.config.model_copy(update={"chunk_critic": False})

    # -- the base policy's specs, transform, encoder and head ------------------------------------------
    @property
    def n_obs_steps(self) -> int:
        return self.base.n_obs_steps

    @property
    def horizon(self) -> int:
        return self.base.horizon

    @property
    def n_action_steps(self) -> int:
        return self.base.n_action_steps

    @property
    def head(self):
        return self.base.head

    @property
    def backbone(self):
        return self.base.backbone

    def prepare_obs(self, obs):
        return self.base.prepare_obs(obs)

    def encode(self, obs, instruction=None) -> torch.Tensor:
        return self.base.encode(obs, instruction)

    def compute_loss(self, batch):
        raise ManipError("a steered policy is trained with 'manip steer', not 'manip train'")

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()  # frozen: no dropout or batch statistics change
        return self

    # -- steering --------------------------------------------------------------------------------------
    def initial_noise(self, cond: torch.Tensor, n: int = 1, generator=None) -> torch.Tensor:
        """The noise fed to the base head: ``n`` draws from the actor per row, or its mode (``deploy: mode``, one
        candidate)."""
        state = cond.float()
        if n == 1 and self.config.deploy == "mode":
            return self.actor.mode(state)
        return self.actor.sample(state.repeat_interleave(n, dim=0), generator)[0]

    def noise_values(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The critic's (pessimistic, min of two) value of each noise ``(B, H, A)`` at state ``cond``, ``(B,)``."""
        return self.critic(cond.float(), noise).min(dim=-1).values

    def chunks_from_noise(self, cond: torch.Tensor, noise: torch.Tensor, steps=None) -> torch.Tensor:
        """The base head's normalized chunks ``(B, H, A)`` for the given noise (no gradient)."""
        return self.base.head.sample(
            self.base.backbone, cond, self.horizon, self.action_dim, steps=steps, noise=noise
        )
