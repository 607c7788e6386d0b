"""`manip serve`: serve a checkpoint over WebSocket to robots and sim clients (protocol: docs/PROTOCOL.md)."""

from __future__ import annotations

import argparse
import sys

from manip.cli.verb import Verb
from manip.core.errors import ManipError


def configure(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--checkpoint", metavar="CKPT", help="checkpoint directory (config.json + model.safetensors)"
    )
    what.add_argument(
        "--synthetic",
        choices=("lowdim", "image"),
        help="serve a deterministic stand-in model instead (tests, benchmarks, network checks)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (0 picks a free one; default 8000)")
    parser.add_argument(
        "--token-file",
        metavar="F",
        help="file holding the shared token clients must send (else MANIP_SERVER_TOKEN)",
    )
    parser.add_argument(
        "--max-batch", type=int, default=16, help="most requests per forward pass (1: no batching)"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=2.0,
        help="longest wait for more requests before a forward pass, only while another client is active "
        "(default 2)",
    )
    parser.add_argument(
        "--max-frame-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest accepted message, all its websocket frames together (default 16 MiB)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=1024,
        help="requests waiting for the model beyond which new ones get an 'overloaded' reply (default 1024)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda when available, else cpu)"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="autocast the forward pass to bfloat16 (CUDA only)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the modules serving runs (encoders, backbone); compiles during warm-up",
    )
    parser.add_argument("--steps", type=int, default=None, help="sampling steps for diffusion/flow heads")
    parser.add_argument("--warmup", type=int, default=2, help="forward passes before accepting clients")
    parser.add_argument("--synthetic-ms", type=float, default=0.0, help="simulated model time of --synthetic")


def build_source(args: argparse.Namespace):
    """The model to serve: a checkpoint (torch) or the synthetic stand-in."""
    if args.synthetic:
        from manip.real.synthetic import SyntheticSource

        return SyntheticSource(args.synthetic, compute_ms=args.synthetic_ms)
    from manip.policies.serving import LocalPolicySource

    return LocalPolicySource.from_checkpoint(
        args.checkpoint, device=args.device, steps=args.steps, bf16=args.bf16, compile=args.compile
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from manip.core.config import validate_config
    from manip.real.client.auth import read_token
    from manip.real.server import PolicyServer, ServerConfig, check_bind

    token = read_token(args.token_file)
    config = validate_config(
        ServerConfig,
        {
            "host": args.host,
            "port": args.port,
            "max_batch": args.max_batch,
            "batch_wait_ms": args.batch_wait_ms,
            "max_frame_bytes": args.max_frame_bytes,
            "max_queue": args.max_queue,
            "warmup": args.warmup,
        },
        source="options",
    )
    check_bind(config.host, token)  # before loading a model
    if args.steps is not None and args.steps < 1:
        raise ManipError(f"--steps must be >= 1, got {args.steps}")
    server = PolicyServer(build_source(args), config, token=token)

    def ready(srv: PolicyServer) -> None:
        meta = srv.meta
        print(
            f"manip serve: listening on ws://{config.host}:{srv.port} ({meta.policy_type}, "
            f"checkpoint {meta.checkpoint_id or '-'}, auth {'on' if token else 'off'}, "
            f"health http://{config.host}:{srv.port}/healthz)",
            file=sys.stderr,
            flush=True,
        )

    try:
        asyncio.run(server.serve(on_ready=ready))
    except OSError as exc:
        raise ManipError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    return 0


VERB = Verb(help="serve a checkpoint over WebSocket to robots and sim clients", configure=configure, run=run)
