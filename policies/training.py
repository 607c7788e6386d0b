"""Wire a :class:`~manip.policies.train_config.TrainConfig` into a run: dataset, specs, normalizer, policy, trainer.

Shared by ``manip train`` and ``manip demo``. Rollouts are an injected callback (see
:func:`sim_rollout` in ``manip.sim.commands.train``), so nothing here imports ``manip.sim``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec, Spec
from manip.data.layout import is_frame
from manip.policies.base import ACTION_KEY
from manip.policies.checkpoint import set_action_semantics
from manip.policies.config import POLICY_TYPES
from manip.policies.train_config import TrainConfig
from manip.policies.trainer import RolloutFn, Trainer, seed_everything
from manip.real.client.points import is_point_cloud


def specs_from_store(store, obs_keys, action_key: str = ACTION_KEY) -> tuple[Spec, Spec]:
    """Observation and action specs from a store's per-step shapes (uint8 frames are ``rgb``, ``point_cloud``
    keys of shape ``(N, 3|6)`` are ``points``)."""
    features = []
    for key in obs_keys:
        shape, dtype = store.step_spec(key)
        kind = "rgb" if is_frame(shape, dtype) and len(shape) == 3 else "lowdim"
        kind = "points" if is_point_cloud(key, shape) else kind
        features.append(FeatureSpec(key, shape, str(dtype) if kind == "rgb" else "float32", kind))
    shape, _dtype = store.step_spec(action_key)
    if len(shape) != 1:
        raise ManipError(f"{store.path}: '{action_key}' has per-step shape {shape}, expected (A,)")
    return Spec(tuple(features)), Spec((FeatureSpec(ACTION_KEY, shape),))


def action_semantics_of(store, quiet: bool = False) -> tuple[float, dict]:
    """``(control_rate, action)`` the store records (attributes ``control_rate``, ``action_semantics``); a store
    without them gets robosuite's OSC_POSE defaults at 20 Hz, with a printed note."""
    from manip.real.client.sources import DEFAULT_CONTROL_RATE, ROBOSUITE_OSC_ACTION

    attrs = store.attrs
    rate, action = attrs.get("control_rate"), attrs.get("action_semantics")
    missing = [name for name, value in (("control_rate", rate), ("action_semantics", action)) if not value]
    if missing and not quiet:
        print(
            f"note: {store.path} does not record {' or '.join(missing)}; assuming robosuite OSC_POSE deltas "
            f"at {DEFAULT_CONTROL_RATE:g} Hz",
            file=sys.stderr,
        )
    return float(rate or DEFAULT_CONTROL_RATE), dict(action or ROBOSUITE_OSC_ACTION)


def build_policy_and_dataset(config: TrainConfig, quiet: bool = False):
    """The training dataset and a fresh policy whose normalizer is fitted on that dataset's episodes (and which
    carries the dataset's action semantics: :func:`action_semantics_of`)."""
    from manip.data.dataset import ChunkDataset
    from manip.data.normalizer import Normalizer

    pc = config.policy_config
    dataset = ChunkDataset(
        config.data.path,
        list(pc.obs_keys),
        pc.horizon,
        pc.n_obs_steps,
        pc.n_action_steps,
        seed=config.trainer.seed,
        max_train_episodes=config.data.max_episodes,
        frame_memory_bytes=int(config.data.frame_memory_gb * (1 << 30)),
        filter_key=config.data.filter_key,
    )
    obs_spec, action_spec = specs_from_store(dataset.store, pc.obs_keys)
    lowdim = [f.name for f in obs_spec.of_kind("lowdim")]
    unknown = sorted(set(pc.normalizer) - {*lowdim, ACTION_KEY})
    if unknown:
        raise ManipError(
            f"policy.normalizer: key(s) {', '.join(unknown)} are not low-dim observations or action"
        )
    modes = {key: pc.normalizer.get(key, "minmax") for key in [*lowdim, ACTION_KEY]}
    normalizer = Normalizer.fit(dataset.iter_episodes([*lowdim, ACTION_KEY]), modes)
    policy = POLICY_TYPES.get(pc.type).cls(pc, obs_spec, action_spec, normalizer)
    set_action_semantics(policy, *action_semantics_of(dataset.store, quiet))
    return policy, policy.training_dataset(dataset)


def mixture_weights(dataset, task_weights: dict[str, float], quiet: bool = False):
    """Per-window sampling probabilities giving each task its ``task_weights`` share of a batch (printed)."""
    from manip.data.mixture import task_mixture_weights, task_shares, window_tasks

    tasks = window_tasks(dataset.store, dataset.window_episodes())
    weights = task_mixture_weights(tasks, task_weights)
    if not quiet:
        before, after = task_shares(tasks), task_shares(tasks, weights)
        shares = ", ".join(f"{t} {before[t]:.0%} -> {after[t]:.0%}" for t in after)
        print(f"task shares of a batch (uniform windows -> task_weights): {shares}")
    return weights


def intervention_sampling(dataset, config: TrainConfig, base=None, quiet: bool = False):
    """Per-window probabilities from the intervention flags (``data.intervention_weight`` / ``only_interventions``,
    times ``base``); the intervention share of a batch before and after is printed."""
    from manip.data import interventions as iv

    chunks = getattr(dataset, "dataset", dataset)  # the ChunkDataset under a policy's wrapper
    window_steps = chunks.window_steps()
    flagged = iv.intervention_windows(chunks.store, window_steps)
    data = config.data
    dropped = np.zeros(len(flagged), bool)
    notes = []
    if data.drop_policy_steps:
        policy = iv.policy_windows(chunks.store, flagged, chunks.window_episodes())
        dropped |= policy
        notes.append(f"{int(policy.sum())} windows of the policy driving dropped")
    if data.drop_recovery_steps:
        recovery = iv.recovery_windows(chunks.store, window_steps)
        dropped |= recovery
        notes.append(f"{int(recovery.sum())} windows covering a recovery step dropped")
    weights = iv.intervention_weights(
        flagged, data.intervention_weight, data.only_interventions, base, dropped
    )
    if not quiet:
        before, after = iv.share_of(flagged, base), iv.share_of(flagged, weights)
        print("; ".join([f"intervention windows' share of a batch: {before:.0%} -> {after:.0%}", *notes]))
    return weights


def run_training(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    rollout: RolloutFn | None = None,
    stop_at: int | None = None,
    quiet: bool = False,
) -> Path:
    """Train into ``out_dir`` (resuming from ``out_dir/state`` when ``resume``); returns the checkpoint dir."""
    out_dir = Path(out_dir)
    state = out_dir / "state"
    if resume and not state.is_dir():
        raise ManipError(f"{out_dir}: nothing to resume (no state/ directory)")
    if not resume and state.is_dir():
        raise ManipError(f"{out_dir}: already holds a run; pass --resume or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = config.model_dump(mode="json")
    saved = out_dir / "config.yaml"
    if resume and saved.is_file() and yaml.safe_load(saved.read_text()) != resolved:
        raise ManipError(f"{saved}: the config differs from the run being resumed")
    saved.write_text(yaml.safe_dump(resolved, sort_keys=False))
    seed_everything(config.trainer.seed)  # the initial weights are a function of the seed
    policy, dataset = build_policy_and_dataset(config, quiet=quiet)
    if config.init_from and not resume:  # on resume, the saved state already holds the weights
        from manip.policies.checkpoint import load_for_finetuning

        fresh = policy
        policy = load_for_finetuning(config.init_from, like=fresh)
        set_action_semantics(policy, fresh.control_rate, fresh.action_semantics)  # this run's data decides
    weights = None
    if config.data.task_weights:
        weights = mixture_weights(dataset, config.data.task_weights, quiet=quiet)
    data = config.data
    if (
        data.intervention_weight is not None
        or data.only_interventions
        or data.drop_policy_steps
        or data.drop_recovery_steps
    ):
        weights = intervention_sampling(dataset, config, weights, quiet=quiet)
    trainer = Trainer(
        policy, dataset, config.trainer, out_dir, rollout=rollout, quiet=quiet, sample_weights=weights
    )
    if resume:
        trainer.resume()
    checkpoint = trainer.fit(stop_at=stop_at)
    if trainer.is_main and trainer.top:
        (out_dir / "top.json").write_text(json.dumps(trainer.top, indent=2) + "\n")
    return checkpoint
