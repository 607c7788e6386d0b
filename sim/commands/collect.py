"""`manip collect`: record demonstrations (scripted expert or teleop) into a Zarr store"""

from __future__ import annotations

import argparse

from manip.cli.verb import Verb
from manip.sim.commands import require_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", help="robosuite task: Lift, PickPlaceCan, NutAssemblySquare, Stack, Door")
    parser.add_argument("--device", help="scripted | keyboard | spacemouse")
    parser.add_argument("--episodes", type=int, help="episodes to keep")
    parser.add_argument("--out", help="Zarr store (created, or appended to when it exists)")
    parser.add_argument("--obs", default="lowdim", help="observation mode: lowdim | image")
    parser.add_argument("--image-size", type=int, default=84, help="camera image side in pixels (image mode)")
    parser.add_argument("--seed", type=int, default=0, help="first episode seed (episode k tries seed S+k)")
    parser.add_argument(
        "--keep-failures", action="store_true", help="also keep episodes that did not succeed"
    )
    parser.add_argument(
        "--policy", help="checkpoint that drives; the operator's device takes over (corrections)"
    )
    parser.add_argument("--quiet", action="store_true", help="no status line")


def run(args: argparse.Namespace) -> int:
    require_options(args, "task", "device", "episodes", "out")
    from manip.sim.collect import collect
    from manip.sim.devices import make_device
    from manip.sim.env import make_env
    from manip.sim.tasks import check_obs_mode, get_task

    get_task(args.task)
    check_obs_mode(args.obs)
    device = make_device(args.device, args.task)
    policy = None
    if args.policy:
        from manip.policies.serving import LocalPolicySource

        policy = LocalPolicySource.from_checkpoint(args.policy)
    env = make_env(args.task, obs_mode=args.obs, image_size=args.image_size)
    try:
        report = collect(
            env, device, args.out, args.episodes, seed=args.seed, keep_failures=args.keep_failures,
            policy=policy, quiet=args.quiet,
        )  # fmt: skip
    finally:
        device.close()
        env.close()
    print(
        f"collect: kept {report.kept} episode(s) of {report.attempted} tried "
        f"({report.successes} successful) → {args.out}"
    )
    return 0 if report.kept == args.episodes else 1


VERB = Verb(
    help="record demonstrations (scripted expert or teleop) into a Zarr store", configure=configure, run=run
)
