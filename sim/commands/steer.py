"""`manip steer`: noise-space RL (DSRL) over a frozen flow / MeanFlow policy, from the task's success reward"""

from __future__ import annotations

import argparse

from manip.cli.verb import Verb
from manip.sim.commands import require_options, task_help

GUIDE = """\
The result OUT/checkpoint/ is a checkpoint like any other (policy type "steered": the base policy embedded,
plus the noise actor and critic): manip eval --checkpoint OUT/checkpoint, manip serve and the robot node run it.
OUT/steer.json records every training episode's outcome and the settings. Example:
  manip steer --checkpoint runs/lift_meanflow/checkpoint --task Lift --env-steps 20000 --out runs/lift_steer"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = GUIDE
    parser.add_argument("--checkpoint", help="the frozen base policy (flow, MeanFlow or DDIM diffusion head)")
    parser.add_argument("--task", help=task_help())
    parser.add_argument(
        "--env-steps", type=int, help="environment steps to learn from (all workers together)"
    )
    parser.add_argument("--out", help="output directory (checkpoint/, steer.json)")
    parser.add_argument("--workers", type=int, default=2, help="parallel simulation processes (default 2)")
    parser.add_argument(
        "--variant", default="sac", help="sac (DSRL-SAC) | na (DSRL-NA, noise aliasing; default sac)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first episode seed and network seed")
    parser.add_argument("--horizon", type=int, help="steps per episode (default: the task's)")
    parser.add_argument(
        "--action-steps",
        type=int,
        metavar="N",
        help="actions executed per chunk decision (default: the base checkpoint's n_action_steps); the steered "
        "checkpoint keeps it, so eval, serve and the robot node execute as many",
    )
    parser.add_argument(
        "--noise-bound", type=float, default=1.5, help="the actor's noise range per dimension"
    )
    parser.add_argument("--hidden", default="256,256", help="actor/critic hidden widths (comma-separated)")
    parser.add_argument("--batch-size", type=int, default=256, help="SAC batch size")
    parser.add_argument("--learning-starts", type=int, default=64, help="chunks with random noise first")
    parser.add_argument("--utd", type=float, default=1.0, help="gradient steps per transition")
    parser.add_argument(
        "--entropy-backup", action="store_true",
        help="add the entropy bonus to the TD target (soft Q); off by default (see SACConfig.entropy_backup)",
    )  # fmt: skip
    parser.add_argument("--save-every", type=int, default=0, help="also save a checkpoint every N env steps")
    parser.add_argument("--device", default="cpu", help="torch device of the learner (cpu, cuda)")
    parser.add_argument(
        "--deploy", default="sample", help="noise the saved policy uses: sample (from the actor) | mode"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    require_options(args, "checkpoint", "task", "env_steps", "out")
    from manip.core.errors import ManipError
    from manip.sim.steer.loop import SteerSettings, steer

    try:
        hidden = tuple(int(w) for w in args.hidden.split(","))
    except ValueError:
        raise ManipError(f"--hidden must be comma-separated integers, got '{args.hidden}'") from None
    settings = SteerSettings(
        env_steps=args.env_steps, workers=args.workers, variant=args.variant, seed=args.seed,
        horizon=args.horizon, noise_bound=args.noise_bound, hidden=hidden, save_every=args.save_every,
        device=args.device, deploy=args.deploy, action_steps=args.action_steps,
        sac={"batch_size": args.batch_size, "learning_starts": args.learning_starts, "updates_per_transition": args.utd,
             "entropy_backup": args.entropy_backup},
    )  # fmt: skip
    report = steer(args.checkpoint, args.task, args.out, settings, quiet=args.quiet)
    print(
        f"steer: {report['env_steps']} env steps, {report['episodes']} episodes "
        f"({report['successes']} successful), {report['updates']} updates → {report['checkpoint']}"
    )
    return 0


VERB = Verb(
    help="noise-space RL (DSRL) over a frozen policy's initial noise; writes a steered checkpoint",
    configure=configure,
    run=run,
)
