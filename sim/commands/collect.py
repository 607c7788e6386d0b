"""`manip collect`: record demonstrations (scripted expert or teleop) into a Zarr store"""

from __future__ import annotations

import argparse
import functools

from manip.cli.verb import Verb
from manip.sim.commands import require_options, task_help

TELEOP_GUIDE = """\
teleoperation (--device keyboard or spacemouse) opens a window: the scene on the left, on the right the
episode, seed, step, time left, gripper, success, kept/discarded counts and every control.
  1. The episode waits until you first move; the clock (--horizon steps at 20 Hz) starts then.
  2. keyboard: W/S forward/back, A/D left/right, R/F up/down, Z/X T/G C/V rotate, Space open/close the gripper
     (SpaceMouse: push/twist the cap; left button opens/closes, right button starts/ends/keeps).
  3. On success or time-up the scene freezes and asks: Enter keep, Backspace discard, Tab redo the same
     seed, Esc quit. Enter during an episode ends it early (then the same question).
  4. Esc (or closing the window) stops: what was kept stays in the store and collect exits 0.
Appending to an existing store continues after its last seed. Example, 20 Lift demonstrations:
  manip collect --task Lift --device keyboard --episodes 20 --out lift_teleop.zarr
Corrections: add --policy CKPT; the policy drives and you take over whenever you move (steps marked
intervention=True), with the same window and questions."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = TELEOP_GUIDE
    parser.add_argument("--task", help=task_help())
    parser.add_argument("--device", help="scripted | keyboard | spacemouse")
    parser.add_argument("--episodes", type=int, help="episodes to keep")
    parser.add_argument("--out", help="Zarr store (created, or appended to when it exists)")
    parser.add_argument("--obs", default="lowdim", help="observation mode: lowdim | image")
    parser.add_argument("--image-size", type=int, default=84, help="camera image side in pixels (image mode)")
    parser.add_argument(
        "--seed", type=int, default=None,
        help="first episode seed (episode k tries seed S+k); default: 0, or one past the store's last seed",
    )  # fmt: skip
    parser.add_argument("--horizon", type=int, help="steps per episode (default: the task's, 400 for Lift)")
    parser.add_argument(
        "--keep-failures", action="store_true", help="also keep episodes that did not succeed"
    )
    parser.add_argument(
        "--auto-keep", action="store_true",
        help="teleop: no keep/discard question; keep successes (and failures with --keep-failures)",
    )  # fmt: skip
    parser.add_argument(
        "--policy", help="checkpoint that drives; the operator's device takes over (corrections)"
    )
    parser.add_argument(
        "--corrections", action="store_true",
        help="with --policy: intervene before the policy fails (the scripted expert watches, or you take over), "
        "rewind toward earlier poses, correct the subtask, end the episode (steps flagged, per-step 'phase')",
    )  # fmt: skip
    parser.add_argument(
        "--divergence", type=float, default=None, metavar="D",
        help="with --corrections and the scripted watcher: intervene when the policy's position commands stray "
        "this far from the expert's, averaged over 10 ticks (action units; default 0.5)",
    )  # fmt: skip
    parser.add_argument(
        "--stall-steps", type=int, default=None, metavar="N",
        help="with --corrections and the scripted watcher: intervene after N ticks in which the expert's plan "
        "completed no phase (default 80)",
    )  # fmt: skip
    parser.add_argument(
        "--stall-motion", type=float, default=None, metavar="M",
        help="with --stall-steps: a stall also needs the arm to have moved less than M metres over the last 20 "
        "ticks, so a policy still on its way is not stopped (default 0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--rewind-steps", type=int, default=None, metavar="N",
        help="with --corrections: the recovery retraces the arm's last N positions before the correction "
        "(default 20; 0: no recovery, the correction starts where the policy was stopped)",
    )  # fmt: skip
    parser.add_argument(
        "--correct-until-success", action="store_true",
        help="with --corrections (scripted): the expert's correction goes on through the rest of the task until "
        "it succeeds (or 300 correction ticks, or the horizon), instead of ending once the failed subtask is done",
    )  # fmt: skip
    parser.add_argument(
        "--corrected-only", action="store_true",
        help="with --corrections (scripted): keep only episodes with an intervention, not policy rollouts that "
        "succeeded without one",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no status line")


def run(args: argparse.Namespace) -> int:
    require_options(args, "task", "device", "episodes", "out")
    from manip.core.errors import ManipError
    from manip.sim.collect import collect
    from manip.sim.devices import make_device
    from manip.sim.env import make_env
    from manip.sim.tasks import check_obs_mode, get_task

    get_task(args.task)
    check_obs_mode(args.obs)
    if args.horizon is not None and args.horizon < 1:
        raise ManipError(f"--horizon must be >= 1, got {args.horizon}")
    if args.corrections and not args.policy:
        raise ManipError("--corrections needs --policy CKPT (the policy that is corrected)")
    watch = {
        "divergence": args.divergence,
        "stall_steps": args.stall_steps,
        "stall_motion": args.stall_motion,
    }
    given = [f"--{name.replace('_', '-')}" for name, value in watch.items() if value is not None]
    given += ["--corrected-only"] if args.corrected_only else []
    given += ["--correct-until-success"] if args.correct_until_success else []
    if args.rewind_steps is not None and not args.corrections:
        raise ManipError("--rewind-steps needs --corrections")
    verb = "needs" if len(given) == 1 else "need"
    if given and not args.corrections:
        raise ManipError(f"{', '.join(given)} {verb} --corrections")
    if given and args.device != "scripted":
        raise ManipError(
            f"{', '.join(given)} {verb} --device scripted (they set how the scripted expert watches and corrects; "
            "an operator decides when to take over and when to let go)"
        )
    if args.corrected_only and args.keep_failures:
        raise ManipError("--corrected-only and --keep-failures contradict each other: pass one of them")
    if args.divergence is not None and not args.divergence > 0:
        raise ManipError(f"--divergence must be > 0, got {args.divergence}")
    if args.stall_motion is not None and not args.stall_motion >= 0:
        raise ManipError(f"--stall-motion must be >= 0 metres, got {args.stall_motion}")
    if args.stall_steps is not None and args.stall_steps < 1:
        raise ManipError(f"--stall-steps must be >= 1, got {args.stall_steps}")
    if args.rewind_steps is not None and args.rewind_steps < 0:
        raise ManipError(f"--rewind-steps must be >= 0, got {args.rewind_steps}")
    policy = None
    if args.policy:
        from manip.policies.serving import LocalPolicySource

        policy = LocalPolicySource.from_checkpoint(args.policy)
    device = make_device(args.device, args.task)
    env = make_env(
        args.task, obs_mode=args.obs, image_size=args.image_size, horizon=args.horizon, offscreen=device.human
    )
    front = None
    try:
        if device.human:
            from manip.sim.teleop import TeleopUI

            front = TeleopUI(
                env, device, args.episodes, keep_failures=args.keep_failures, auto_keep=args.auto_keep,
                corrections=policy is not None, quiet=args.quiet,
            )  # fmt: skip
        runner = None
        if args.corrections:
            from manip.sim.corrections import (
                CorrectionSettings,
                CorrectionsUnattended,
                record_correction_episode,
            )

            chosen = {**watch, "rewind_steps": args.rewind_steps}
            settings = CorrectionSettings(
                **{name: value for name, value in chosen.items() if value is not None},
                until_success=args.correct_until_success,
            )
            runner = functools.partial(record_correction_episode, settings=settings)
            front = front or CorrectionsUnattended(args.keep_failures, args.quiet, args.corrected_only)
        report = collect(
            env, device, args.out, args.episodes, seed=args.seed, keep_failures=args.keep_failures,
            policy=policy, quiet=args.quiet, front=front, episode_runner=runner,
        )  # fmt: skip
    finally:
        device.close()
        env.close()
    stopped = "stopped by operator; " if report.stopped else ""
    print(
        f"collect: {stopped}kept {report.kept} episode(s) of {report.attempted} tried "
        f"({report.successes} successful, seeds from {report.first_seed}) → {args.out}"
    )
    return 0 if report.kept == args.episodes or report.stopped else 1


VERB = Verb(
    help="record demonstrations (scripted expert or teleop) into a Zarr store", configure=configure, run=run
)
