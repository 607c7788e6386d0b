"""`manip data`: inspect, validate and convert Zarr datasets.

manip data info PATH [--json]
manip data validate PATH [--require KEY ...]
manip data convert SRC DST [--zarr-format {2,3}]
manip data merge SRC SRC [SRC ...] --out DST [--keys K,K,...]
manip data export STORE --format {lerobot,robomimic} OUT [--fps HZ] [--crf N]
manip data view STORE --out DIR
"""

from __future__ import annotations

import argparse
import json

from manip.cli.verb import Verb
from manip.core.errors import ManipError, ValidationFailed


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="COMMAND")
    info = sub.add_parser("info", help="summarize a store: episodes, steps, keys, lengths, success labels")
    info.add_argument("path", metavar="PATH", help="Zarr store (directory or .zarr.zip)")
    info.add_argument(
        "--json", action="store_true", help="print the contract's JSON object instead of a table"
    )
    validate = sub.add_parser(
        "validate", help="check a store; exit 1 with one line per problem on stderr if it is not valid"
    )
    validate.add_argument("path", metavar="PATH", help="Zarr store (directory or .zarr.zip)")
    validate.add_argument(
        "--require", action="append", default=[], metavar="KEY", help="also require data/KEY (repeatable)"
    )
    convert = sub.add_parser(
        "convert", help="convert robomimic HDF5, Diffusion Policy zarr v2 or rosbag2/.mcap into a new store"
    )
    convert.add_argument(
        "src", metavar="SRC", help="robomimic .hdf5 | zarr v2 store (dir or .zarr.zip) | rosbag2"
    )
    convert.add_argument("dst", metavar="DST", help="new store directory (must not exist)")
    convert.add_argument(
        "--zarr-format", type=int, choices=(2, 3), default=3, help="output Zarr format (default 3)"
    )
    merge = sub.add_parser("merge", help="merge several stores into one new store (e.g. one per task)")
    merge.add_argument("sources", nargs="+", metavar="SRC", help="stores to merge, copied in this order")
    merge.add_argument("--out", required=True, metavar="DST", help="new store directory (must not exist)")
    merge.add_argument(
        "--keys",
        type=lambda text: [k for k in text.split(",") if k],
        default=None,
        metavar="K,K,...",
        help="keys to keep (default: every key all sources share with the same shape and dtype)",
    )
    merge.add_argument(
        "--zarr-format", type=int, choices=(2, 3), default=3, help="output Zarr format (default 3)"
    )
    recover = sub.add_parser(
        "recover", help="commit the partial episode an interrupted recorder left behind (marked recovered)"
    )
    recover.add_argument("path", metavar="PATH", help="Zarr store (directory or .zarr.zip)")
    export = sub.add_parser("export", help="write a store as a LeRobot v3 dataset or a robomimic HDF5 file")
    export.add_argument("path", metavar="STORE", help="Zarr store (directory or .zarr.zip)")
    export.add_argument("--format", required=True, choices=("lerobot", "robomimic"), help="output format")
    export.add_argument(
        "out", metavar="OUT", help="new dataset directory (lerobot) or .hdf5 file (must not exist)"
    )
    export.add_argument("--fps", type=float, default=None, help="steps per second (default: the store's)")
    export.add_argument(
        "--crf",
        type=int,
        default=None,
        help="video quality for lerobot cameras (lower is better; default 18)",
    )
    view = sub.add_parser("view", help="write a static HTML page to browse a store's episodes")
    view.add_argument("path", metavar="STORE", help="Zarr store (directory or .zarr.zip)")
    view.add_argument("--out", required=True, metavar="DIR", help="directory for index.html and its videos")
    view.add_argument("--episodes", type=int, default=None, help="show the first N episodes (default: all)")
    for sub_parser in (info, validate, convert, merge, recover, export, view):
        sub_parser.error = parser.error  # one-line errors like the rest of the CLI
    parser.set_defaults(data_command=None)


def run(args: argparse.Namespace) -> int:
    commands = {
        "info": run_info,
        "validate": run_validate,
        "convert": run_convert,
        "merge": run_merge,
        "recover": run_recover,
        "export": run_export,
        "view": run_view,
    }
    command = commands.get(args.data_command)
    if command is None:
        raise ManipError(
            "needs a command: info, validate, convert, merge, recover, export or view (see manip data --help)"
        )
    return command(args)


def run_info(args: argparse.Namespace) -> int:
    from manip.data.info import format_info, store_info
    from manip.data.store import EpisodeStore

    with EpisodeStore.open(args.path, skip_unreadable=True) as store:
        info = store_info(store)
        print(json.dumps(info) if args.json else format_info(store, info))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from manip.core.progress import progress_enabled
    from manip.data.validate import REQUIRED_KEYS, validate_store

    report = validate_store(args.path, required=[*REQUIRED_KEYS, *args.require], quiet=not progress_enabled())
    for note in report.notes:
        print(f"note: {note}")
    if not report.ok:
        raise ValidationFailed(report.problems)
    print(f"{args.path}: valid")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from manip.core.progress import progress_enabled
    from manip.data.converters import convert
    from manip.data.store import EpisodeStore

    converter = convert(args.src, args.dst, zarr_format=args.zarr_format, quiet=not progress_enabled())
    with EpisodeStore.open(args.dst) as store:
        print(
            f"{args.dst}: {store.num_episodes} episodes, {store.num_steps} steps from {converter.name} "
            f"({args.src}), zarr v{store.zarr_format}"
        )
        skipped = store.attrs.get("skipped_groups")
        if skipped:
            print(f"note: not copied (not per-step observations): {', '.join(f'{g}/' for g in skipped)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from manip.core.progress import progress_enabled
    from manip.data.exporters import export

    options = {}
    if args.crf is not None:
        from manip.data.video import VideoSettings

        if args.format != "lerobot":
            raise ManipError("--crf applies to --format lerobot (robomimic keeps frames exactly)")
        options["video"] = VideoSettings(crf=args.crf)
    summary = export(args.path, args.format, args.out, fps=args.fps, quiet=not progress_enabled(), **options)
    line = f"{args.out}: {summary['episodes']} episodes, {summary['frames']} steps as {args.format}"
    psnr = summary.get("psnr_db") or {}
    if psnr:
        line += "; video PSNR " + ", ".join(f"{k} {v:.1f} dB" for k, v in psnr.items())
    print(line)
    return 0


def run_view(args: argparse.Namespace) -> int:
    from manip.data.view.store_page import write_store_page

    page = write_store_page(args.path, args.out, max_episodes=args.episodes)
    print(f"{page}: open it in a browser")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from manip.core.progress import progress_enabled
    from manip.data.merge import merge
    from manip.data.store import EpisodeStore

    kept, dropped = merge(
        args.sources, args.out, keys=args.keys, zarr_format=args.zarr_format, quiet=not progress_enabled()
    )
    with EpisodeStore.open(args.out) as store:
        print(
            f"{args.out}: {store.num_episodes} episodes, {store.num_steps} steps from {len(args.sources)} stores; "
            f"keys: {', '.join(kept)}" + (f"; dropped: {', '.join(dropped)}" if dropped else "")
        )
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from manip.data.store import EpisodeStore

    with EpisodeStore.open(args.path, mode="a") as store:
        index = store.recover_tail()
        if index is None:
            print(f"{args.path}: nothing to recover")
        else:
            print(f"{args.path}: recovered episode {index} ({int(store.episode_lengths[index])} steps)")
    return 0


VERB = Verb(
    help="inspect, validate and convert Zarr datasets",
    description=(
        "Inspect (info), check (validate), convert (convert), merge (merge), export (export) and browse (view) "
        "episode stores."
    ),
    configure=configure,
    run=run,
)
