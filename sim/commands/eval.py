"""`manip eval`: evaluate a checkpoint or the scripted expert in a robosuite task"""

from __future__ import annotations

import argparse

from manip.cli.verb import Verb
from manip.core.errors import ManipError
from manip.sim.commands import require_options, task_help


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--expert", action="store_true", help="the task's scripted expert acts as the policy")
    parser.add_argument("--task", help=task_help())
    parser.add_argument("--episodes", type=int, help="number of episodes (seeds S..S+N-1)")
    parser.add_argument("--out", help="output directory (results.json, videos/)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (spawn)")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed S+i")
    parser.add_argument("--video", type=int, default=0, metavar="K", help="save mp4s of the first K episodes")
    parser.add_argument("--server", help="evaluate through an inference server at ws://HOST:PORT")
    parser.add_argument("--token-file", help="file holding the server's auth token")
    parser.add_argument("--horizon", type=int, help="override the task's episode horizon (steps)")
    parser.add_argument(
        "--action-steps", type=int, metavar="N", help="actions executed per chunk (default: the checkpoint's)"
    )
    parser.add_argument(
        "--executor",
        metavar="MODE",
        help="chunk executor mode: receding (default), ensemble (ACT temporal ensembling), async, rtc, adaptive",
    )
    parser.add_argument(
        "--ensemble-every",
        type=int,
        metavar="N",
        help="ensemble mode: request a chunk every N ticks (default 1)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="inject this delay into every chunk request (simulated time; the executor holds or keeps acting)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="add uniform jitter in [0, MS] to the injected delay (seeded per episode)",
    )
    parser.add_argument(
        "--ros",
        action="store_true",
        help="run each episode through real processes: sim_robot -> policy_node -> manip serve on loopback "
        "ROS 2 (needs .venv-ros: bash .ci/setup_ros.sh); results.json gains a 'ros' block",
    )
    parser.add_argument(
        "--ros-wall-clock",
        action="store_true",
        help="with --ros: run sim_robot and policy_node on the wall clock, as on a real robot (default: sim_robot "
        "is the ROS clock and steps in lockstep, so a CPU that renders slowly slows episodes instead of dropping "
        "commands)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        metavar="N",
        help="test-time chunk selection: draw N chunks per observation in one batch and execute the best "
        "(evaluates a copy of the checkpoint with policy.sampling.candidates=N, written under OUT/checkpoint)",
    )
    parser.add_argument(
        "--selector",
        metavar="NAME",
        help="with --candidates: how the best chunk is picked: auto (default), critic, medoid, density",
    )
    parser.add_argument(
        "--sampling-mode",
        choices=("full", "streaming"),
        help="how a streaming-head checkpoint samples: streaming (a denoising buffer rolled one tick at a time) or "
        "full (every tick sampled from noise with the head's steps); evaluates a copy under OUT/checkpoint",
    )
    parser.add_argument(
        "--steps-per-tick",
        type=int,
        metavar="N",
        help="with streaming sampling: network evaluations per control tick",
    )
    parser.add_argument("--json", action="store_true", help="print results.json instead of the summary line")


def run(args: argparse.Namespace) -> int:
    require_options(args, "task", "episodes", "out")
    import json

    from manip.sim.eval import evaluate, source_spec_from_args, summary_line

    source = source_spec_from_args(args.checkpoint, args.expert, args.server, args.token_file)
    if args.ros_wall_clock and not args.ros:
        raise ManipError("--ros-wall-clock only applies with --ros")
    source = _with_sampling(source, args)
    if args.ros:
        from manip.sim.ros_eval import evaluate_ros

        unsupported = [
            flag
            for flag, value in (
                ("--workers", args.workers != 1),
                ("--video", args.video > 0),
                ("--action-steps", args.action_steps is not None),
                ("--ensemble-every", args.ensemble_every is not None),
                ("--delay-ms", bool(args.delay_ms)),
                ("--jitter-ms", bool(args.jitter_ms)),
            )
            if value
        ]
        if unsupported:
            raise ManipError(
                f"{', '.join(unsupported)} cannot be combined with --ros (the policy node runs one episode at a "
                "time with the checkpoint's action steps, and its delays are real, not injected); drop them or run "
                "without --ros"
            )
        results = evaluate_ros(
            source, args.task, args.episodes, args.out, seed=args.seed, horizon=args.horizon, quiet=args.json,
            executor_mode=args.executor, sim_clock=not args.ros_wall_clock,
        )  # fmt: skip
        print(json.dumps(results) if args.json else summary_line(results, args.out))
        return 0
    results = evaluate(
        source, args.task, args.episodes, args.out, seed=args.seed, workers=args.workers, video=args.video,
        horizon=args.horizon, quiet=args.json, action_steps=args.action_steps,
        executor_mode=args.executor, ensemble_every=args.ensemble_every, delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
    )  # fmt: skip
    print(json.dumps(results) if args.json else summary_line(results, args.out))
    return 0


_SAMPLING_FLAGS = (
    ("candidates", "--candidates", "candidates"),
    ("selector", "--selector", "selector"),
    ("sampling_mode", "--sampling-mode", "mode"),
    ("steps_per_tick", "--steps-per-tick", "steps_per_tick"),
)


def _with_sampling(source, args: argparse.Namespace):
    """The source to evaluate: with ``--candidates``/``--selector``/``--sampling-mode``/``--steps-per-tick``, a
    sampling copy of the checkpoint under ``OUT/checkpoint`` (same weights; every setting is checked before
    anything is written)."""
    given = {
        key: (flag, getattr(args, attr))
        for attr, flag, key in _SAMPLING_FLAGS
        if getattr(args, attr) is not None
    }
    if not given:
        return source
    selecting = "candidates" in given or "selector" in given
    flags = "--candidates/--selector" if selecting else "/".join(flag for flag, _ in given.values())
    if source.kind != "checkpoint":
        verb = "need" if "/" in flags else "needs"
        raise ManipError(f"{flags} {verb} --checkpoint (a local policy; not --expert or --server)")
    if "candidates" in given and args.candidates < 1:
        raise ManipError(f"--candidates {args.candidates}: pass a count of 1 or more")
    if "steps_per_tick" in given and args.steps_per_tick < 1:
        raise ManipError(f"--steps-per-tick {args.steps_per_tick}: pass a count of 1 or more")
    from dataclasses import replace
    from pathlib import Path

    from manip.policies.checkpoint import read_metadata
    from manip.policies.sampling import SamplingConfig, with_sampling

    settings = {key: value for key, (_flag, value) in given.items()}
    policy = read_metadata(source.path)["policy"]
    try:
        sampling = SamplingConfig(**{**dict(policy.get("sampling") or {}), **settings})
    except ValueError as exc:
        raise ManipError(f"{flags}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if selecting:
        _check_selection(sampling, policy)
    _check_streaming(sampling, policy, given)
    out = Path(args.out) / "checkpoint"
    if out.resolve() == Path(source.path).resolve():
        raise ManipError(f"--out {args.out}: its checkpoint/ is the evaluated checkpoint; pass another --out")
    copy = with_sampling(source.path, out, **settings)
    return replace(source, path=str(copy.resolve()))


def _check_selection(sampling, policy: dict) -> None:
    """Refuse chunk-selection settings that cannot run on this checkpoint."""
    from manip.policies.config import POLICY_TYPES

    if sampling.mode == "streaming":
        raise ManipError(
            "--candidates/--selector: the checkpoint samples in streaming mode, which draws one chunk"
        )
    if sampling.candidates < 2:
        raise ManipError(
            f"--candidates/--selector: selection needs N >= 2 candidates (the checkpoint would draw {sampling.candidates}); "
            "pass --candidates N with N >= 2"
        )
    has_critic = callable(
        getattr(POLICY_TYPES.get(str(policy.get("type", "chunk"))).cls, "noise_values", None)
    )
    if sampling.selector == "critic" and not has_critic:
        raise ManipError(
            "--selector critic needs a steered checkpoint (one with a critic): use medoid or density"
        )


def _check_streaming(sampling, policy: dict, given: dict) -> None:
    """Refuse streaming settings that cannot run on this checkpoint."""
    if "steps_per_tick" in given and sampling.mode != "streaming":
        raise ManipError(
            "--steps-per-tick applies to streaming sampling: the checkpoint samples in full mode"
        )
    if sampling.mode != "streaming" or "mode" not in given:
        return
    head = str(dict(policy.get("head") or {}).get("name"))
    if head != "streaming":
        raise ManipError(
            f"--sampling-mode streaming needs a streaming-head checkpoint (this one's head: {head})"
        )
    if policy.get("n_action_steps") != 1:
        raise ManipError(
            "--sampling-mode streaming executes one action per tick: the checkpoint has n_action_steps "
            f"{policy.get('n_action_steps')}"
        )


VERB = Verb(
    help="evaluate a checkpoint or the scripted expert in a robosuite task", configure=configure, run=run
)
