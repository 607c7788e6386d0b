"""GPU figures (``bash bench/gpu.sh OUT`` runs this, then ``manip bench server``): writes JSON files into OUT.

``python -m manip.bench.gpu OUT [--quick]``:

- ``inference_gpu.json``: batch-1 chunk latency of the default-architecture policies (UNet1D 256-512-1024,
  horizon 16, two observation steps; random weights) for low-dim DDIM-10, flow-10 and MeanFlow-1 and image
  DDIM-10 and MeanFlow-1, each in the modes ``eager per-step`` (the plain path: observation FiLM recomputed every
  step), ``eager`` (conditioning bound once per chunk), ``eager bf16`` (autocast), ``compiled``
  (``torch.compile`` of the served modules, low-dim DDIM-10 and MeanFlow-1 only: compiling costs a minute
  each), ``CUDA graphs`` and ``CUDA graphs bf16`` (:class:`manip.policies.cuda_graph.CudaGraphPolicy`). The modes
  of one case are timed round-robin; figures are min / p50 / p99 ms. Targets: DDIM-10 eager / CUDA graphs >= 10,
  MeanFlow-1 with CUDA graphs < 2 ms.
- ``train_gpu.json``: ``manip bench train`` figures on CUDA: optimisation steps/s of the low-dim (batch 256) and
  image (batch 64) diffusion policies in fp32 and bf16, and image windows/s read from disk with DataLoader
  workers against what the image step consumes.
- ``checkpoint/``: a random-weight low-dim DDIM policy, for ``manip bench server --checkpoint`` (gpu.sh).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

from manip.bench.inference import Case, build_policy, obs_spec_for, random_obs
from manip.sim.stats import percentiles_ms

LATENCY_CASES = (
    Case("lowdim", "diffusion", 10),
    Case("lowdim", "flow", 10),
    Case("lowdim", "meanflow", 1),
    Case("image", "diffusion", 10),
    Case("image", "meanflow", 1),
)
COMPILED = {"lowdim DDIM-10", "lowdim MeanFlow-1"}


def _modes(case: Case, device: str) -> dict:
    """name → predict(obs) for every mode of ``case`` (policies of one seed: equal weights)."""
    import torch

    from manip.policies.cuda_graph import CudaGraphPolicy
    from manip.policies.serving import compile_served_modules

    torch.manual_seed(0)
    policy = build_policy(case).to(device).eval()
    per_step = copy.deepcopy(policy)
    per_step.head.bind_condition = False
    graphs, graphs_bf16 = CudaGraphPolicy(policy), CudaGraphPolicy(copy.deepcopy(policy), bf16=True)

    def bf16(obs):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return policy.predict_chunk(obs, steps=case.steps)

    modes = {
        "eager per-step": lambda obs: per_step.predict_chunk(obs, steps=case.steps),
        "eager": lambda obs: policy.predict_chunk(obs, steps=case.steps),
        "eager bf16": bf16,
        "CUDA graphs": lambda obs: graphs.predict_chunk(obs, steps=case.steps),
        "CUDA graphs bf16": lambda obs: graphs_bf16.predict_chunk(obs, steps=case.steps),
    }
    if case.label in COMPILED:
        compiled = copy.deepcopy(policy)
        compile_served_modules(compiled)
        modes["compiled"] = lambda obs: compiled.predict_chunk(obs, steps=case.steps)
    return modes


def latency(repeats: int, warmup: int, device: str, on_case=None) -> dict:
    """Per case and mode: batch-1 chunk latency percentiles, plus the first call's seconds (capture/compile).

    ``on_case(figures)`` gets the figures so far after every case (so a run cut short still leaves them)."""
    import torch

    rows = []
    for case in LATENCY_CASES:
        modes = _modes(case, device)
        obs = random_obs(obs_spec_for(case.obs_mode), 1, 2)
        first_s, durations = {}, {name: [] for name in modes}
        with torch.inference_mode():
            for name, predict in modes.items():
                start = time.perf_counter()
                predict(obs)
                first_s[name] = round(time.perf_counter() - start, 2)
            for round_ in range(warmup + repeats):
                for name, predict in modes.items():
                    start = time.perf_counter()
                    chunk = predict(obs)  # numpy: the device work has finished
                    if round_ >= warmup:
                        durations[name].append(time.perf_counter() - start)
                    assert chunk.shape[0] == 1
        for name, values in durations.items():
            rows.append(
                {
                    "label": case.label,
                    "mode": name,
                    "latency_ms": percentiles_ms(values),
                    "first_call_s": first_s[name],
                }
            )
        print(f"latency: {case.label} done", file=sys.stderr, flush=True)
        if on_case is not None:
            on_case(latency_figures(rows))
    return latency_figures(rows)


def latency_figures(rows: list[dict]) -> dict:
    """The latency rows and the two target figures (``None`` until their cases have run)."""
    p50 = {(r["label"], r["mode"]): r["latency_ms"]["p50"] for r in rows}
    eager, graphs = p50.get(("lowdim DDIM-10", "eager per-step")), p50.get(("lowdim DDIM-10", "CUDA graphs"))
    return {
        "cases": rows,
        "ddim10_eager_over_cuda_graphs": round(eager / graphs, 2) if eager and graphs else None,
        "meanflow1_cuda_graphs_p50_ms": p50.get(("lowdim MeanFlow-1", "CUDA graphs")),
        "targets": {"ddim10_eager_over_cuda_graphs": ">= 10", "meanflow1_cuda_graphs_p50_ms": "< 2"},
    }


def training(iters: int, device: str, data_batches: int) -> dict:
    """Steps/s of the low-dim and image diffusion policies (fp32, bf16) and the image data supply from disk."""
    from manip.bench.train import data_supply, supply_report, time_training

    rows = []
    for case, batch in ((Case("lowdim", "diffusion", 0), 256), (Case("image", "diffusion", 0), 64)):
        for bf16 in (False, True):
            row = time_training(case, None, batch, iters, 3, device=device, bf16=bf16)
            row["steps_per_s"] = round(row["samples_per_s"] / batch, 2)
            rows.append(row)
            print(f"training: {row['label']} bf16={bf16} done", file=sys.stderr, flush=True)
    fp32 = [r for r in rows if not r["bf16"]]
    workers = min(8, max(1, (os.cpu_count() or 2) // 2))
    supply = data_supply(64, data_batches, workers, episodes=40)
    return {"cases": rows, "data": supply_report(supply, fp32)}


def save_checkpoint(out: Path) -> Path:
    """A random-weight low-dim DDIM policy saved as ``out/checkpoint`` (for ``manip bench server``)."""
    import torch

    torch.manual_seed(0)
    path = out / "checkpoint"
    build_policy(Case("lowdim", "diffusion", 10)).save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manip.bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the JSON files")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--only", choices=("latency", "training", "checkpoint"), default=None)
    args = parser.parse_args(argv)
    import torch

    from manip.bench.inference import machine

    args.out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("bench gpu: CUDA is not available; nothing measured", file=sys.stderr)
        return 2
    info = {**machine(), "device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    stamp = {"machine": info, "date": time.strftime("%Y-%m-%d", time.gmtime())}
    repeats, iters = (5, 3) if args.quick else (50, 20)
    if args.only in (None, "checkpoint"):
        print(f"checkpoint: {save_checkpoint(args.out)}", file=sys.stderr)
    if args.only in (None, "latency"):

        def write(figures: dict) -> None:
            report = {"benchmark": "inference_gpu", "batch": 1, **stamp, **figures}
            (args.out / "inference_gpu.json").write_text(json.dumps(report, indent=2) + "\n")

        latency(repeats, 5, "cuda", on_case=write)
    if args.only in (None, "training"):
        figures = {"benchmark": "train_gpu", **stamp, **training(iters, "cuda", 5 if args.quick else 30)}
        (args.out / "train_gpu.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
