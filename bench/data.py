"""``manip bench data``: episode-store write MB/s and random-window read samples/s, and the image codec study.

Store cases (episodes of ``--steps`` steps written with ``EpisodeStore.add_episode`` into a fresh store under a
temporary directory, then ``--samples`` random windows read through ``SequenceSampler`` the way training reads
them: horizon 16, 2 observation steps, images only for the observation steps):

- ``lowdim``: action (7) + robot0_eef_pos (3) + robot0_eef_quat (4) + robot0_gripper_qpos (2) + object (10);
- ``cams84``: the same + 2 cameras 84×84×3 uint8;
- ``cams240``: the same + 2 cameras 240×320×3 uint8.

Frames are read from memory (when they fit ``frame_memory_bytes``), from disk straight from the shard files
(``from_disk``, :mod:`manip.data.shard_reads`) and from disk through zarr (``from_disk_through_zarr``), the three
samplers reading each window in turn.

Write MB/s counts raw (uncompressed) bytes per second of wall time. Frames are synthetic but image-like (smooth
shaded background, moving objects, ±2 sensor noise), or rendered by robosuite with ``--frames sim``.

The codec study (skip with ``--no-codecs``) encodes/decodes single frames with each candidate codec: Blosc
(zstd level 1 as used by the store for images, zstd 3, lz4), and the JPEG family through imagecodecs (JPEG XL lossless, WebP lossless, PNG,
and lossy JPEG q90 / AVIF for reference): ratio, encode and decode MB/s, lossless or PSNR.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from manip.bench.commands import machine
from manip.core.errors import ManipError
from manip.core.progress import progress

LOWDIM = {"action": 7, "robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10}
CAMERAS = ("agentview_image", "robot0_eye_in_hand_image")
CASES = {"lowdim": None, "cams84": (84, 84), "cams240": (240, 320)}
HORIZON, N_OBS_STEPS, N_ACTION_STEPS = 16, 2, 8


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``manip bench data`` (the dispatcher adds ``--json`` and ``--out``)."""
    parser.add_argument("--episodes", type=int, default=5, help="episodes written per case (default 5)")
    parser.add_argument("--steps", type=int, default=100, help="steps per episode (default 100)")
    parser.add_argument("--samples", type=int, default=300, help="random windows read per case (default 300)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}"
    )
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=3, help="store format (default 3)")
    parser.add_argument("--frames", choices=("synthetic", "sim"), default="synthetic", help="image source")
    parser.add_argument("--no-codecs", action="store_true", help="skip the image codec study")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the window draw")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the stores (default: a temp dir)"
    )


# ---- data ------------------------------------------------------------------------------------------------


def synthetic_frames(steps: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Image-like uint8 frames (steps, H, W, 3): shaded table, two moving boxes, sensor noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([90 + 60 * yy / height, 80 + 40 * xx / width, 70 + 30 * (yy + xx) / (height + width)], -1)
    frames = np.empty((steps, height, width, 3), np.uint8)
    t = np.linspace(0, 1, steps)
    for i in range(steps):
        img = base.copy()
        for k, color in enumerate(((200, 40, 40), (40, 40, 60))):
            cy = height * (0.3 + 0.4 * np.sin(np.pi * (t[i] + 0.3 * k)))
            cx = width * (0.3 + 0.4 * t[i] if k == 0 else 0.7 - 0.3 * t[i])
            h, w = height * (0.12 + 0.06 * k), width * 0.1
            box = (np.abs(yy - cy) < h / 2) & (np.abs(xx - cx) < w / 2)
            shade = 0.8 + 0.2 * (yy - cy) / max(h, 1)
            img[box] = np.asarray(color, np.float32) * shade[box, None]
        img += rng.integers(-2, 3, img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def sim_frames(steps: int, height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    """Frames of both cameras rendered by robosuite Lift while a smooth random action moves the arm."""
    from manip.sim.env import make_env

    env = make_env("Lift", obs_mode="lowdim", offscreen=True, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    out = {camera: np.empty((steps, height, width, 3), np.uint8) for camera in CAMERAS}
    action = np.zeros(7)
    for t in range(steps):
        action = 0.9 * action + 0.1 * np.concatenate([rng.uniform(-1, 1, 6), [np.sign(np.sin(t / 15))]])
        env.step(action)
        for camera in CAMERAS:
            name = camera.removesuffix("_image")
            out[camera][t] = env.raw.sim.render(camera_name=name, width=width, height=height)[::-1]
    env.close()
    return out


def make_episode(
    case: str, steps: int, rng: np.random.Generator, frames: str, seed: int
) -> dict[str, np.ndarray]:
    """One episode of ``case``: smooth low-dim trajectories plus the case's cameras."""
    t = np.linspace(0, 1, steps)[:, None]
    episode = {
        key: (
            np.sin(2 * np.pi * (t * rng.uniform(0.5, 2, dim) + rng.uniform(0, 1, dim)))
            + 0.01 * rng.normal(size=(steps, dim))
        ).astype(np.float32)
        for key, dim in LOWDIM.items()
    }
    size = CASES[case]
    if size is not None:
        if frames == "sim":
            episode.update(sim_frames(steps, *size, seed))
        else:
            episode.update({camera: synthetic_frames(steps, *size, rng) for camera in CAMERAS})
    return episode


# ---- store cases -----------------------------------------------------------------------------------------


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def time_windows_round_robin(samplers: list, order: np.ndarray) -> list[float]:
    """Seconds each sampler takes to read the windows ``order`` one by one (as a DataLoader without batching
    would); the samplers read each window in turn, so load changes on a shared machine hit them alike."""
    seconds = [0.0] * len(samplers)
    for i in order:
        for k, sampler in enumerate(samplers):
            start = time.perf_counter()
            sampler.sample(int(i))
            seconds[k] += time.perf_counter() - start
    return seconds


def store_case(case: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Write ``args.episodes`` episodes, then read ``args.samples`` random windows; return the figures."""
    from manip.data.sampler import SequenceSampler
    from manip.data.store import EpisodeStore

    rng = np.random.default_rng(args.seed)
    episodes = [make_episode(case, args.steps, rng, args.frames, args.seed + i) for i in range(args.episodes)]
    raw_bytes = sum(v.nbytes for e in episodes for v in e.values())
    path = workdir / f"{case}.zarr"
    shutil.rmtree(path, ignore_errors=True)
    store = EpisodeStore.create(path, zarr_format=args.zarr_format)
    start = time.perf_counter()
    for i, episode in enumerate(episodes):
        store.add_episode(episode, {"task": "Lift", "seed": i, "success": True})
    write_s = time.perf_counter() - start
    disk = dir_bytes(path)

    reader = EpisodeStore.open(path)
    cameras = [k for k in CAMERAS if k in reader.keys]
    keys = [*LOWDIM, *cameras]
    first_k = {k: N_OBS_STEPS for k in cameras}
    start = time.perf_counter()
    sampler = SequenceSampler(reader, keys, HORIZON, N_OBS_STEPS, N_ACTION_STEPS, first_k=first_k)
    open_s = time.perf_counter() - start
    order = np.random.default_rng(args.seed).integers(0, len(sampler), args.samples)
    window = dict(first_k=first_k, frame_memory_bytes=0)
    lazy = SequenceSampler(reader, keys, HORIZON, N_OBS_STEPS, N_ACTION_STEPS, **window)
    through_zarr = SequenceSampler(
        reader, keys, HORIZON, N_OBS_STEPS, N_ACTION_STEPS, **window, direct_reads=False
    )
    read_s, lazy_s, zarr_s = time_windows_round_robin([sampler, lazy, through_zarr], order)
    frame_bytes = int(sum(np.prod(reader.step_spec(k)[0]) for k in cameras))
    return {
        "case": case,
        "episodes": args.episodes,
        "steps": args.episodes * args.steps,
        "raw_mb": round(raw_bytes / 1e6, 3),
        "disk_mb": round(disk / 1e6, 3),
        "compression_ratio": round(raw_bytes / max(disk, 1), 2),
        "write_mb_per_s": round(raw_bytes / 1e6 / write_s, 3),
        "write_steps_per_s": round(args.episodes * args.steps / write_s, 1),
        "sampler_setup_s": round(open_s, 3),
        "frames_in_memory": sampler.frames_in_memory,
        "read_samples_per_s": round(args.samples / read_s, 1),
        "read_samples_per_s_from_disk": round(args.samples / lazy_s, 1),
        "read_frame_mb_per_s_from_disk": round(args.samples * N_OBS_STEPS * frame_bytes / 1e6 / lazy_s, 1),
        "read_samples_per_s_from_disk_through_zarr": round(args.samples / zarr_s, 1),
        "window": {"horizon": HORIZON, "n_obs_steps": N_OBS_STEPS, "cameras": len(cameras)},
    }


# ---- codec study -----------------------------------------------------------------------------------------


def codec_candidates() -> dict:
    """name → (encode(frame) -> bytes, decode(bytes) -> frame, lossless?) for the codecs available here."""
    import imagecodecs
    import numcodecs

    def blosc(cname: str, shuffle: int, level: int = 3):
        codec = numcodecs.Blosc(cname, level, shuffle)
        return (
            lambda f: codec.encode(f),
            lambda b, shape: np.frombuffer(codec.decode(b), np.uint8).reshape(shape),
            True,
        )

    candidates = {
        "blosc-zstd1 (default)": blosc("zstd", numcodecs.Blosc.NOSHUFFLE, 1),
        "blosc-zstd3": blosc("zstd", numcodecs.Blosc.NOSHUFFLE),
        "blosc-zstd3-bitshuffle": blosc("zstd", numcodecs.Blosc.BITSHUFFLE),
        "blosc-lz4": blosc("lz4", numcodecs.Blosc.NOSHUFFLE),
    }
    image = [
        ("jpegxl-lossless", "JPEGXL", "jpegxl", {"lossless": True, "effort": 1}, True),
        ("webp-lossless", "WEBP", "webp", {"lossless": True, "method": 0}, True),
        ("png", "PNG", "png", {"level": 1}, True),
        ("jpeg-q90", "JPEG8", "jpeg8", {"level": 90}, False),
        ("avif-q90", "AVIF", "avif", {"level": 90, "speed": 10}, False),
    ]
    for name, flag, codec, options, lossless in image:
        if not getattr(imagecodecs, flag).available:
            continue
        enc, dec = getattr(imagecodecs, f"{codec}_encode"), getattr(imagecodecs, f"{codec}_decode")
        candidates[name] = ((lambda f, e=enc, o=options: e(f, **o)), (lambda b, shape, d=dec: d(b)), lossless)
    return candidates


def best_time(work, repeats: int):
    """(fastest wall time of ``repeats`` calls, last result): the least disturbed run on a shared machine."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def codec_study(frames: np.ndarray, repeats: int = 3) -> list[dict]:
    """Per-frame ratio, encode/decode MB/s (best of ``repeats``) and fidelity of each codec on ``frames``."""
    rows = []
    raw = frames[0].nbytes * len(frames)
    for name, (encode, decode, lossless) in codec_candidates().items():
        encode_s, blobs = best_time(
            lambda e=encode: [bytes(e(np.ascontiguousarray(f))) for f in frames], repeats
        )
        decode_s, decoded = best_time(lambda d=decode, b=blobs: [d(x, frames.shape[1:]) for x in b], repeats)
        back = np.stack(decoded).reshape(frames.shape)
        exact = bool(np.array_equal(back, frames))
        mse = float(np.mean((back.astype(np.float64) - frames) ** 2))
        rows.append(
            {
                "codec": name,
                "lossless": exact,
                "psnr_db": None if exact else round(10 * np.log10(255**2 / max(mse, 1e-12)), 1),
                "ratio": round(raw / sum(len(b) for b in blobs), 2),
                "encode_mb_per_s": round(raw / 1e6 / encode_s, 1),
                "decode_mb_per_s": round(raw / 1e6 / decode_s, 1),
                "decode_frames_per_s": round(len(frames) / decode_s, 1),
                "declared_lossless": lossless,
            }
        )
    return rows


# ---- entry -----------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    """Run the store cases and the codec study; print a table unless ``args.json``; return the figures."""
    args.episodes = int(getattr(args, "episodes", 5))
    args.steps = int(getattr(args, "steps", 100))
    args.samples = int(getattr(args, "samples", 300))
    args.zarr_format = int(getattr(args, "zarr_format", 3))
    args.frames = getattr(args, "frames", "synthetic")
    args.seed = int(getattr(args, "seed", 0))
    cases = [c.strip() for c in str(getattr(args, "cases", ",".join(CASES))).split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ManipError(f"bench data: unknown case(s) {', '.join(unknown)} (choose from {', '.join(CASES)})")
    if args.episodes < 1 or args.steps < HORIZON or args.samples < 1:
        raise ManipError(f"bench data: needs --episodes >= 1, --steps >= {HORIZON} and --samples >= 1")
    workdir = getattr(args, "dir", None)
    temp = None
    if workdir is None:
        temp = tempfile.TemporaryDirectory(prefix="manip-bench-data-")
        workdir = Path(temp.name)
    elif not Path(workdir).is_dir():
        raise ManipError(f"{workdir}: no such directory for --dir")
    try:
        quiet = bool(getattr(args, "json", False))
        results = [
            store_case(case, args, Path(workdir))
            for case in progress(cases, desc="bench data", quiet=quiet, unit="case")
        ]
    finally:
        if temp is not None:
            temp.cleanup()
    report = {
        "benchmark": "data",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "zarr_format": args.zarr_format,
        "frames": args.frames,
        "seed": args.seed,
        "cases": results,
    }
    if not getattr(args, "no_codecs", False):
        rng = np.random.default_rng(args.seed)
        study = {}
        for label, (h, w) in (("84x84", (84, 84)), ("240x320", (240, 320))):
            frames = (
                sim_frames(20, h, w, args.seed)[CAMERAS[0]]
                if args.frames == "sim"
                else synthetic_frames(20, h, w, rng)
            )
            study[label] = codec_study(frames)
        report["codecs"] = study
    if not getattr(args, "json", False):
        print(format_report(report))
    return report


def format_report(report: dict) -> str:
    """A human-readable table of :func:`run`'s figures."""
    lines = [
        f"zarr v{report['zarr_format']}, {report['frames']} frames, window horizon {HORIZON} / obs {N_OBS_STEPS}",
        f"{'case':<8} {'steps':>6} {'raw MB':>8} {'disk MB':>8} {'ratio':>6} {'write MB/s':>11} "
        f"{'read samples/s':>15} {'(from disk)':>12} {'(via zarr)':>11}",
    ]
    for r in report["cases"]:
        lines.append(
            f"{r['case']:<8} {r['steps']:>6} {r['raw_mb']:>8.2f} {r['disk_mb']:>8.2f} {r['compression_ratio']:>6.2f} "
            f"{r['write_mb_per_s']:>11.2f} {r['read_samples_per_s']:>15.1f} {r['read_samples_per_s_from_disk']:>12.1f} "
            f"{r['read_samples_per_s_from_disk_through_zarr']:>11.1f}"
        )
    for label, rows in report.get("codecs", {}).items():
        lines.append(f"image codecs, {label} frames:")
        lines.append(
            f"  {'codec':<24} {'lossless':>8} {'ratio':>6} {'enc MB/s':>9} {'dec MB/s':>9} {'dec fr/s':>9}"
        )
        for r in rows:
            fidelity = "yes" if r["lossless"] else f"{r['psnr_db']}dB"
            lines.append(
                f"  {r['codec']:<24} {fidelity:>8} {r['ratio']:>6.2f} {r['encode_mb_per_s']:>9.1f} "
                f"{r['decode_mb_per_s']:>9.1f} {r['decode_frames_per_s']:>9.1f}"
            )
    return "\n".join(lines)
