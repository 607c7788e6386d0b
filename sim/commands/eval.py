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
        help="with --candidates: how the best chunk is picked: auto (default), critic, medoid, density, coherence "
        "(closest to the previous chunk where they overlap, plus closeness to the other candidates)",
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
    parser.add_argument(
        "--noise-scale",
        type=float,
        metavar="S",
        help="standard deviation of the initial sampling noise (a temperature; 1 samples as trained, below 1 "
        "nearer the head's central mode); evaluates a copy under OUT/checkpoint",
    )
    parser.add_argument("--json", action="store_true", help="print results.json instead of the summary line")


def run(args: argparse.Namespace) -> int:
    require_options(args, "task", "episodes", "out")
    import json

    from manip.sim.commands.eval_sampling import sampling_copy, sampling_settings
    from manip.sim.eval import check_eval_options, evaluate, source_spec_from_args, summary_line

    source = source_spec_from_args(args.checkpoint, args.expert, args.server, args.token_file)
    if args.ros_wall_clock and not args.ros:
        raise ManipError("--ros-wall-clock only applies with --ros")
    sampling = sampling_settings(source, args)  # checked; the copy is written once every option is
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
        check_eval_options(args.task, args.episodes)  # evaluate_ros checks the executors the node runs
        source = sampling_copy(source, args.out, sampling)
        results = evaluate_ros(
            source, args.task, args.episodes, args.out, seed=args.seed, horizon=args.horizon, quiet=args.json,
            executor_mode=args.executor, sim_clock=not args.ros_wall_clock,
        )  # fmt: skip
        print(json.dumps(results) if args.json else summary_line(results, args.out))
        return 0
    check_eval_options(
        args.task, args.episodes, args.workers, args.action_steps, args.executor, args.ensemble_every,
        args.delay_ms, args.jitter_ms,
    )  # fmt: skip
    source = sampling_copy(source, args.out, sampling)
    results = evaluate(
        source, args.task, args.episodes, args.out, seed=args.seed, workers=args.workers, video=args.video,
        horizon=args.horizon, quiet=args.json, action_steps=args.action_steps,
        executor_mode=args.executor, ensemble_every=args.ensemble_every, delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
    )  # fmt: skip
    print(json.dumps(results) if args.json else summary_line(results, args.out))
    return 0


VERB = Verb(
    help="evaluate a checkpoint or the scripted expert in a robosuite task", configure=configure, run=run
)
