"""`manip demo [--out DIR]`: scripted Lift demos → train a low-dim policy → evaluate → print the success rate.

Steps (each reused when a previous run in the same DIR finished it):

1. ``DIR/data.zarr``: scripted-expert Lift demonstrations (``manip.sim.collect``), seeds 0, 1, …;
2. ``DIR/train/``: ``manip train configs/demo.yaml`` into it; ``DIR/checkpoint/`` is the trained policy;
3. ``DIR/eval/``: ``manip.sim.eval`` on seeds 100000+ (never used for training): ``results.json`` and videos;
4. ``DIR/plot.png``: the training loss curve and the success rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from manip.cli.verb import Verb

TASK = "Lift"
EVAL_SEED = 100_000
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="runs/demo", metavar="DIR", help="output directory (default runs/demo)"
    )
    parser.add_argument(
        "--demos", type=int, default=50, help="scripted demonstrations to collect (default 50)"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: configs/demo.yaml)")
    parser.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="parallel evaluation workers (default 2)")
    parser.add_argument("--video", type=int, default=2, help="episodes to save as mp4 (default 2)")
    parser.add_argument(
        "--horizon", type=int, default=None, help="evaluation episode length (default: the task's)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _say(text: str) -> None:
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def collect_demos(path: Path, episodes: int, quiet: bool) -> None:
    """Scripted Lift demonstrations into ``path`` (topped up when a previous run stopped early)."""
    from manip.data.store import EpisodeStore
    from manip.sim.collect import collect
    from manip.sim.devices import make_device
    from manip.sim.env import make_env

    have = EpisodeStore.open(path).num_episodes if path.exists() else 0
    if have >= episodes:
        _say(f"reusing {have} demonstrations in {path}")
        return
    device, env = make_device("scripted", TASK), make_env(TASK, obs_mode="lowdim")
    try:
        seed = 0
        if have:
            seed = 1 + max(int(EpisodeStore.open(path).episode_meta(i).get("seed", 0)) for i in range(have))
        report = collect(env, device, path, episodes - have, seed=seed, quiet=quiet)
    finally:
        device.close()
        env.close()
    _say(f"collected {report.kept} scripted demonstrations ({report.attempted} tried) → {path}")


def train_policy(out: Path, data: Path, steps: int | None, quiet: bool) -> Path:
    """Train the demo config on ``data`` into ``out/train``; copy the checkpoint to ``out/checkpoint``."""
    from manip.policies.train_config import load_train_config
    from manip.policies.training import run_training

    overrides = [f"data.path={data}"] + ([f"trainer.steps={steps}"] if steps else [])
    config = load_train_config(CONFIG, overrides)
    run_dir, final = out / "train", out / "checkpoint"
    if (run_dir / "checkpoint" / "model.safetensors").is_file() and final.is_dir():
        _say(f"reusing the trained policy in {final}")
        return final
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted earlier demo run: start its training over
    _say(f"training {config.policy_config.head.name} policy for {config.trainer.steps} steps → {run_dir}")
    started = time.perf_counter()
    checkpoint = run_training(config, run_dir, quiet=quiet)
    _say(f"trained in {time.perf_counter() - started:.0f} s")
    if final.exists():
        shutil.rmtree(final)
    shutil.copytree(checkpoint, final)
    return final


def plot(out: Path, results: dict) -> Path:
    """Training loss (from ``train/metrics.jsonl``) and the evaluation success rate in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines() if line]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set(xlabel="training step", ylabel="loss", yscale="log")
    low, high = results["ci95"]
    ax.set_title(
        f"{results['task']}: success {100 * results['success_rate']:.0f} % "
        f"(CI95 {100 * low:.0f}–{100 * high:.0f} %, {results['episodes']} episodes)"
    )
    fig.tight_layout()
    path = out / "plot.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    from manip.core.errors import ManipError
    from manip.sim.eval import SourceSpec, evaluate, summary_line

    for name in ("demos", "eval_episodes", "workers"):
        if getattr(args, name) < 1:
            raise ManipError(f"--{name.replace('_', '-')} must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    collect_demos(out / "data.zarr", args.demos, args.quiet)
    checkpoint = train_policy(out, out / "data.zarr", args.steps, args.quiet)
    _say(f"evaluating on {args.eval_episodes} episodes (seeds {EVAL_SEED}+, never used for training)")
    source = SourceSpec("checkpoint", path=str(checkpoint.resolve()))
    results = evaluate(
        source, TASK, args.eval_episodes, out / "eval", seed=EVAL_SEED, workers=args.workers,
        video=args.video, horizon=args.horizon, quiet=args.quiet,
    )  # fmt: skip
    figure = plot(out, results)
    print(summary_line(results, out / "eval"))
    print(f"success rate: {100 * results['success_rate']:.1f} % on {TASK} ({results['episodes']} episodes)")
    print(f"checkpoint:   {checkpoint}")
    print(f"results:      {out / 'eval' / 'results.json'}")
    print(f"plot:         {figure}")
    if args.video:
        print(f"videos:       {out / 'eval' / 'videos'}")
    print(f"total time:   {time.perf_counter() - started:.0f} s")
    return 0


VERB = Verb(
    help="scripted demos on Lift, train a low-dim policy, evaluate it and print the success rate",
    configure=configure,
    run=run,
)
