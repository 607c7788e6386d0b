"""``manip eval``'s sampling options (``--candidates``, ``--selector``, ``--sampling-mode``, ``--steps-per-tick``,
``--noise-scale``):
checked against the checkpoint before anything is written, then a copy of the checkpoint with ``policy.sampling``
changed (same weights) is written under ``OUT/checkpoint`` and evaluated."""

from __future__ import annotations

import argparse
import filecmp
from dataclasses import replace
from pathlib import Path

from manip.core.errors import ManipError

FLAGS = (
    ("candidates", "--candidates", "candidates"),
    ("selector", "--selector", "selector"),
    ("sampling_mode", "--sampling-mode", "mode"),
    ("steps_per_tick", "--steps-per-tick", "steps_per_tick"),
    ("noise_scale", "--noise-scale", "noise_scale"),
)
"""(argparse attribute, flag, ``policy.sampling`` key) of each option."""


def sampling_settings(source, args: argparse.Namespace) -> dict | None:
    """The ``policy.sampling`` settings the options ask for (None: none given), each checked against the
    checkpoint; a checkpoint that samples in streaming mode is also checked against the executor options."""
    given = {key: (flag, getattr(args, attr)) for attr, flag, key in FLAGS if getattr(args, attr) is not None}
    if source.kind != "checkpoint":
        if given:
            flags = "/".join(flag for flag, _ in given.values())
            verb = "need" if len(given) > 1 else "needs"
            raise ManipError(f"{flags} {verb} --checkpoint (a local policy; not --expert or --server)")
        return None
    for key in ("candidates", "steps_per_tick"):
        if key in given and given[key][1] < 1:
            raise ManipError(f"{given[key][0]} {given[key][1]}: pass a count of 1 or more")
    from manip.policies.checkpoint import read_metadata
    from manip.policies.sampling import SamplingConfig

    settings = {key: value for key, (_flag, value) in given.items()}
    policy = read_metadata(source.path)["policy"]
    try:
        sampling = SamplingConfig(**{**dict(policy.get("sampling") or {}), **settings})
    except ValueError as exc:
        flags = "/".join(flag for flag, _ in given.values())
        raise ManipError(f"{flags}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    mode_given = "mode" in given
    where = (
        f"--sampling-mode {sampling.mode}"
        if mode_given
        else f"the checkpoint samples in {sampling.mode} mode"
    )
    if "candidates" in given or "selector" in given:
        _check_selection(sampling, policy, where)
    if "noise_scale" in given and _policy_has(policy, "initial_noise"):
        raise ManipError(
            f"--noise-scale {sampling.noise_scale}: this checkpoint's actor picks the initial noise (a steered "
            "checkpoint); pass it with a plain one"
        )
    if sampling.selector == "coherence" and sampling.candidates > 1 and sampling.mode == "full":
        if args.ros:
            raise ManipError(
                "--selector coherence: the policy server keeps no per-episode state; evaluate without --ros"
            )
        shift = _ticks_per_call(args)
        if shift != sampling.coherence_shift:  # also a checkpoint that selects by coherence already
            settings["coherence_shift"] = shift
    if "steps_per_tick" in given and sampling.mode != "streaming":
        fix = "" if mode_given else "; add --sampling-mode streaming"
        raise ManipError(f"--steps-per-tick applies to streaming sampling ({where}{fix})")
    head = dict(policy.get("head") or {})
    if mode_given and head.get("name") != "streaming":
        raise ManipError(
            f"--sampling-mode applies to a streaming-head checkpoint (this one's head: {head.get('name', 'none')})"
        )
    if sampling.mode == "streaming":
        _check_streaming(policy, head, args, where)
    return settings or None


def _check_selection(sampling, policy: dict, where: str) -> None:
    """Refuse chunk-selection settings that cannot run on this checkpoint."""
    if sampling.mode == "streaming":
        raise ManipError(f"--candidates/--selector: {where}, which draws one chunk; use full sampling")
    if sampling.candidates < 2:
        raise ManipError(
            f"--candidates/--selector: selection needs N >= 2 candidates (the checkpoint would draw {sampling.candidates}); "
            "pass --candidates N with N >= 2"
        )
    if sampling.selector == "critic" and not _policy_has(policy, "noise_values"):
        raise ManipError(
            "--selector critic needs a steered checkpoint (one with a critic): use medoid or density"
        )


def _policy_has(policy: dict, method: str) -> bool:
    """Whether the checkpoint's policy type has ``method`` (``noise_values``: a critic; ``initial_noise``: an
    actor that picks the initial noise; both only on steered policies)."""
    from manip.policies.config import POLICY_TYPES

    return callable(getattr(POLICY_TYPES.get(str(policy.get("type", "chunk"))).cls, method, None))


def _ticks_per_call(args: argparse.Namespace) -> int | None:
    """Control ticks between two chunk requests, which ``coherence`` aligns consecutive chunks by (None: the
    policy's ``n_action_steps``, what the receding executor runs without ``--action-steps``)."""
    from manip.real.client.executor import MODES

    executor = args.executor or "receding"
    if executor not in MODES:  # refused with the other executor options
        return args.action_steps
    if executor == "ensemble":
        return args.ensemble_every or 1
    if executor != "receding":
        raise ManipError(
            f"--selector coherence: --executor {executor} requests chunks at varying ticks; use receding or ensemble"
        )
    return args.action_steps


def _check_streaming(policy: dict, head: dict, args: argparse.Namespace, where: str) -> None:
    """Refuse a streaming run that could not work: the checkpoint's settings, and executor options that would
    execute more than the one clean action per tick."""
    from manip.policies.heads.streaming import streaming_problem

    problem = streaming_problem(
        head.get("name"), policy.get("n_action_steps"), head.get("front"), policy.get("n_obs_steps")
    )
    if problem:
        raise ManipError(f"{where}: {problem}")
    if args.action_steps not in (None, 1):
        raise ManipError(f"--action-steps {args.action_steps}: {where}, which executes one action per tick")
    if args.executor not in (None, "receding"):
        raise ManipError(f"--executor {args.executor}: {where}, which runs with the receding executor only")


def sampling_copy(source, out: str | Path, settings: dict | None):
    """``source``, or with ``settings`` a copy of its checkpoint under ``OUT/checkpoint`` with ``policy.sampling``
    updated (refused when ``OUT`` is inside the checkpoint or ``OUT/checkpoint`` holds other weights)."""
    if not settings:
        return source
    from manip.policies.checkpoint import WEIGHTS
    from manip.policies.sampling import with_sampling

    checkpoint, target = Path(source.path).resolve(), (Path(out) / "checkpoint").resolve()
    if target == checkpoint or checkpoint in target.parents:
        raise ManipError(f"--out {out}: it lies in the evaluated checkpoint; pass another --out")
    if (target / WEIGHTS).exists() and not filecmp.cmp(target / WEIGHTS, checkpoint / WEIGHTS, shallow=False):
        raise ManipError(f"--out {out}: its checkpoint/ holds other weights; pass another --out")
    copy = with_sampling(checkpoint, target, **settings)
    return replace(source, path=str(copy))
