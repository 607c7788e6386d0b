"""The ``manip train`` config: task, dataset, policy, trainer and rollout sections (unknown keys fail at load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat, model_validator

from manip.core.config import StrictConfig, apply_overrides, read_yaml, validate_config
from manip.core.errors import ManipError
from manip.policies.config import parse_policy_config
from manip.policies.trainer import TrainerConfig


class DataConfig(StrictConfig):
    """``path``: the Zarr store (relative paths resolve against the working directory);
    ``max_episodes``: train on at most N episodes (a seeded draw); ``frame_memory_gb``: camera arrays are decoded
    into RAM once when together they fit in this many GiB (much faster sampling), else read frame by frame;
    ``task_weights``: each task's share of a batch in a multi-task store, e.g. ``{Lift: 1, Stack: 2}`` (every task
    of the store named; see :mod:`manip.data.mixture`); unset, every window is equally likely;
    ``filter_key``: train only on the episodes of that filter key (robomimic's ``mask/<key>``, e.g. ``20_percent``;
    ``manip data info`` lists them)."""

    path: str
    max_episodes: int | None = None
    frame_memory_gb: float = Field(1.0, ge=0)
    task_weights: dict[str, PositiveFloat] | None = None
    filter_key: str | None = None
    intervention_weight: PositiveFloat | None = None
    """Windows covering an intervention step (``data/intervention``) are this many times as likely in a batch."""
    only_interventions: bool = False
    """Train only on windows covering an intervention step (see :mod:`manip.data.interventions`)."""
    drop_policy_steps: bool = False
    """Never draw the windows of a corrected episode that cover none of its intervention steps (the policy
    driving before the takeover); plain demonstrations are drawn as usual (see :mod:`manip.data.interventions`)."""
    drop_recovery_steps: bool = False
    """Never draw the windows that cover a recovery step (``data/phase`` 1 of a corrections store: the arm rewound
    along its own path before the correction); see :mod:`manip.data.interventions`."""


class RolloutConfig(StrictConfig):
    """Periodic in-sim evaluation during training (``trainer.rollout_every`` > 0 turns it on)."""

    episodes: int = 20
    seed: int = 200000
    workers: int = 1
    steps: int | None = None


class TrainConfig(StrictConfig):
    """Everything ``manip train CONFIG.yaml`` needs; ``policy`` is validated by the config model of its type.

    ``init_from``: a checkpoint directory to start from (fine-tuning, or training longer on a fresh schedule): its
    weights and normalizer are loaded, while the optimizer, LR schedule, EMA and step count start anew.
    """

    task: str = "Lift"
    init_from: str | None = None
    data: DataConfig
    policy: dict[str, Any] = Field(default_factory=dict)
    trainer: TrainerConfig = TrainerConfig()
    rollout: RolloutConfig = RolloutConfig()

    @model_validator(mode="after")
    def _check_policy(self) -> TrainConfig:
        parse_policy_config(self.policy, where="policy")
        return self

    @property
    def policy_config(self):
        """The typed policy config."""
        return parse_policy_config(self.policy, where="policy")


def _merge(base: dict, update: dict) -> dict:
    """Deep merge; a section that names a different component (``name``) replaces the inherited one."""
    if "name" in update and update["name"] != base.get("name"):
        return dict(update)
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def read_train_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a config; ``inherit: OTHER.yaml`` (relative to this file) deep-merges this file over OTHER."""
    path = Path(path).resolve()
    if path in _seen:
        raise ManipError(f"{path}: 'inherit' loops back to itself")
    raw = read_yaml(path)
    parent = raw.pop("inherit", None)
    if parent is None:
        return raw
    return _merge(read_train_yaml(path.parent / str(parent), (*_seen, path)), raw)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (YAML, with ``inherit``), apply ``key=value`` overrides, validate (one-line errors)."""
    raw = apply_overrides(read_train_yaml(path), overrides or [])
    return validate_config(TrainConfig, raw, source=str(path))
