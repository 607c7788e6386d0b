"""``manip bench server``: the inference server's own overhead and its throughput with concurrent clients.

Overhead: a ``manip serve --synthetic`` process on 127.0.0.1 and one blocking client; per request, round-trip
time minus the model's time (``infer_ms`` reported by the server) = decode + queue + encode + websocket +
loopback + client encode/decode. Two payloads: low-dim (proprio 9 + object 10, two steps) and image
(2×96×96×3 uint8 cameras + proprio, two steps). Figures: p50 and p99 over ``--requests`` requests.

Throughput: 1, 4 and 16 concurrent asyncio clients, each sending its next request as soon as the last reply
arrives, for ``--seconds`` each, against a model with a fixed cost per forward pass whatever the batch size
(``--model-ms``, the synthetic stand-in; a GPU at small batches behaves like this), with batching
(``--max-batch 16``) and without (``--max-batch 1``). With ``--checkpoint CKPT`` the throughput runs use that
real policy instead (its cost grows with the batch on a CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from manip.bench.commands import machine
from manip.core.errors import ManipError
from manip.real.client.connection import AsyncPolicyClient, PolicyClient
from manip.real.launch import start_server
from manip.real.synthetic import synthetic_obs

CLIENT_COUNTS = (1, 4, 16)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``manip bench server`` (the dispatcher adds ``--json``)."""
    parser.add_argument(
        "--requests", type=int, default=500, help="timed requests per overhead case (default 500)"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="duration of each throughput case (default 3)"
    )
    parser.add_argument("--model-ms", type=float, default=20.0, help="synthetic model time per forward pass")
    parser.add_argument("--checkpoint", default=None, help="use this checkpoint for the throughput cases")


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3)}


def overhead_case(kind: str, requests: int, warmup: int = 20) -> dict:
    """Round trip minus model time for ``requests`` sequential requests of payload ``kind``."""
    with start_server(["--synthetic", kind, "--port", "0"]) as srv, PolicyClient(srv.url) as client:
        obs = synthetic_obs(kind, 1.0)
        for _ in range(warmup):
            client.infer(obs)
        overhead, rtt, server = [], [], []
        for _ in range(requests):
            reply = client.infer(obs)
            rtt.append(reply.rtt_ms)
            overhead.append(reply.rtt_ms - reply.timings["infer_ms"])
            server.append(reply.timings["server_ms"] - reply.timings["infer_ms"])
    payload = sum(v.nbytes for v in obs.values())
    return {
        "payload": kind,
        "request_bytes": int(payload),
        "requests": requests,
        "overhead_ms": percentiles(overhead),
        "server_side_overhead_ms": percentiles(server),
        "rtt_ms": percentiles(rtt),
    }


async def _drive(url: str, clients: int, seconds: float, kind: str, obs: dict | None) -> dict:
    connected = [AsyncPolicyClient(url, request_timeout_s=60) for _ in range(clients)]
    for c in connected:
        await c.connect()
    window = obs if obs is not None else synthetic_obs(kind, 1.0)
    counts, batch_sizes, latencies = [0] * clients, [], []
    stop_at = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        while time.perf_counter() < stop_at:
            reply = await connected[i].infer(window)
            counts[i] += 1
            batch_sizes.append(reply.timings["batch_size"])
            latencies.append(reply.rtt_ms)

    start = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    for c in connected:
        await c.close()
    return {
        "clients": clients,
        "replies_per_s": round(sum(counts) / elapsed, 1),
        "mean_batch": round(float(np.mean(batch_sizes)), 2),
        "rtt_ms": percentiles(latencies),
    }


def _checkpoint_obs(url: str) -> dict:
    with PolicyClient(url) as client:
        meta = client.metadata
    rng = np.random.default_rng(0)
    obs = {}
    for f in meta.obs_spec.features:
        shape = (meta.n_obs_steps, *f.shape)
        obs[f.name] = (
            rng.integers(0, 256, shape, dtype=np.uint8)
            if f.kind == "rgb"
            else rng.normal(size=shape).astype(f.dtype)
        )
    return obs


def throughput_cases(seconds: float, model_ms: float, checkpoint: str | None) -> list[dict]:
    """Replies per second for each client count, with and without batching."""
    rows = []
    for max_batch in (16, 1):
        model = (
            ["--checkpoint", checkpoint]
            if checkpoint
            else ["--synthetic", "lowdim", "--synthetic-ms", str(model_ms)]
        )
        with start_server([*model, "--port", "0", "--max-batch", str(max_batch)]) as srv:
            obs = _checkpoint_obs(srv.url) if checkpoint else None
            for clients in CLIENT_COUNTS:
                row = asyncio.run(_drive(srv.url, clients, seconds, "lowdim", obs))
                rows.append({"batching": max_batch > 1, "max_batch": max_batch, **row})
    return rows


def run(args: argparse.Namespace) -> dict:
    """Run the overhead and throughput cases; print a table unless ``args.json``; return JSON-ready figures."""
    requests = int(getattr(args, "requests", 500))
    seconds = float(getattr(args, "seconds", 3.0))
    model_ms = float(getattr(args, "model_ms", 20.0))
    checkpoint = getattr(args, "checkpoint", None)
    if requests < 10 or seconds <= 0 or model_ms < 0:
        raise ManipError("bench server: needs --requests >= 10, --seconds > 0 and --model-ms >= 0")
    report = {
        "benchmark": "server",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "overhead": [overhead_case(kind, requests) for kind in ("lowdim", "image")],
        "throughput_model": checkpoint or f"synthetic, {model_ms} ms per forward pass",
        "throughput": throughput_cases(seconds, model_ms, checkpoint),
        "target_overhead_p50_ms": 1.0,
    }
    if not getattr(args, "json", False):
        print(format_report(report))
    return report


def format_report(report: dict) -> str:
    """A human-readable table of :func:`run`'s figures."""
    lines = [f"{'payload':<8} {'bytes':>8} {'overhead p50':>13} {'p99':>8} {'server p50':>11} {'rtt p50':>8}"]
    for r in report["overhead"]:
        o, s, t = r["overhead_ms"], r["server_side_overhead_ms"], r["rtt_ms"]
        lines.append(
            f"{r['payload']:<8} {r['request_bytes']:>8} {o['p50']:>10.3f} ms {o['p99']:>8.3f} {s['p50']:>11.3f} {t['p50']:>8.3f}"
        )
    lines.append(f"throughput ({report['throughput_model']}):")
    lines.append(f"{'batching':<9} {'clients':>7} {'replies/s':>10} {'mean batch':>11} {'rtt p50 ms':>11}")
    for r in report["throughput"]:
        lines.append(
            f"{'on' if r['batching'] else 'off':<9} {r['clients']:>7} {r['replies_per_s']:>10.1f} "
            f"{r['mean_batch']:>11.2f} {r['rtt_ms']['p50']:>11.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from manip.bench.commands import standalone

    raise SystemExit(standalone("server"))
