"""Typed policy configuration (unknown keys fail at load) and the policy-type registry."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.core.registry import Registry
from manip.policies.sampling import SamplingConfig

#: Policy types by name: "chunk" (encoder + backbone + head) here; ``manip.policies.vla`` adds "vla".
POLICY_TYPES = Registry(
    "policy type",
    modules={
        "chunk": "manip.policies.chunk",
        "vla": "manip.policies.vla",
        "steered": "manip.policies.steering.policy",
    },
)


class Component(StrictConfig):
    """A registered component picked by ``name``; the other keys are its parameters, checked by its registry."""

    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PolicyConfig(StrictConfig):
    """Architecture and horizons of a chunked policy.

    ``obs_keys``: dataset keys the policy observes (their shapes come from the data and land in the obs spec);
    ``encoders``: parameters per encoder name (``lowdim``, ``image``, ``language``); ``normalizer``: mode per key
    (default ``minmax`` for low-dim observations and the action; images are scaled to [-1, 1] by the policy).
    """

    type: str = "chunk"
    obs_keys: tuple[str, ...] = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    encoders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    backbone: Component = Component(name="unet1d")
    head: Component = Component(name="diffusion")
    normalizer: dict[str, str] = Field(default_factory=dict)
    sampling: SamplingConfig = SamplingConfig()
    """How ``predict_chunk`` draws chunks: candidates + selector, streaming (:mod:`manip.policies.sampling`)."""

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        from manip.policies.backbones.base import BACKBONES
        from manip.policies.encoders.base import ENCODERS
        from manip.policies.heads.base import HEADS

        if not self.obs_keys:
            raise ManipError("policy.obs_keys: at least one observation key is needed")
        if self.n_obs_steps < 1 or self.horizon < 1:
            raise ManipError("policy: n_obs_steps and horizon must be >= 1")
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ManipError(
                f"policy.n_action_steps={self.n_action_steps} must be in [1, horizon - n_obs_steps + 1 = "
                f"{self.horizon - self.n_obs_steps + 1}]"
            )
        for name, params in self.encoders.items():
            ENCODERS.parse_params(name, params, where=f"policy.encoders.{name}")
        BACKBONES.parse_params(self.backbone.name, self.backbone.params, where="policy.backbone")
        HEADS.parse_params(self.head.name, self.head.params, where="policy.head")
        return self


def parse_policy_config(raw: dict[str, Any], where: str = "policy") -> StrictConfig:
    """Validate a raw policy section with the config model of its ``type`` (default ``chunk``)."""
    if not isinstance(raw, dict):
        raise ManipError(f"{where}: expected a mapping")
    return POLICY_TYPES.parse_params(str(raw.get("type", "chunk")), raw, where=where)
