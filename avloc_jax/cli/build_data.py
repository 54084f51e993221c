"""`avloc build-data DATASET --data-dir D [--manual-dir M | path flags] [--overwrite] [--weak]`.

Runs one of the TFDS builders in `tfds_builders` (ArrayRecord, no TensorFlow) with
`tfds_builders.build.build`: the build goes to a temporary folder inside D and is renamed
into ``D/<name>/<config>/<version>`` only when complete, so a failed or interrupted build
leaves no partial dataset. A complete dataset is not replaced unless --overwrite is given.
The inputs (--manual-dir, the paths, every required file) are checked before anything is
written; a failed build leaves nothing new in D (a D that did not exist still does not).
Errors: one line ``avloc build-data: error: ...`` on stderr, exit 2 for bad options, 1
for bad or missing input files.
"""

from __future__ import annotations

import argparse
import functools
import logging
from typing import Any

from avloc_jax.cli import messages
from avloc_jax.data.annotations import DataError
from tfds_builders.build import DATASETS, BuildRefused, build, summary

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avloc build-data",
        description="Build a TFDS dataset (ArrayRecord) from the public feature and "
        "annotation files.",
        epilog="Formats and per-dataset commands: docs/data.md.",
    )
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument(
        "--data-dir",
        required=True,
        help="TFDS data dir to write <dataset>/<config>/<version> into.",
    )
    p.add_argument(
        "--manual-dir", help="Folder holding the dataset's files under their usual names."
    )
    p.add_argument("--annotations", help="AVE Annotations.txt, or the W-TALC annotation folder.")
    p.add_argument(
        "--visual",
        help="Visual features: an h5 (AVE), a W-TALC object .npy, or a folder of <id>.npy.",
    )
    p.add_argument(
        "--audio",
        help="Audio features: an h5 (AVE), an aligned object .npy, or a folder of <id>.npy.",
    )
    p.add_argument("--labels", help="AVE labels.h5 (optional; else derived from Annotations.txt).")
    p.add_argument("--gt", help="generic: ActivityNet-format ground-truth JSON.")
    p.add_argument(
        "--classes", help="generic: class list, one name per line (default: sorted GT labels)."
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="Any builder input by name (e.g. train_order=..., noisy_audio=...); repeatable.",
    )
    p.add_argument(
        "--weak",
        action="store_true",
        help="AVE: the weak setting (178 background-only videos in train).",
    )
    p.add_argument("--name", help="generic: the dataset's config name (default: 'default').")
    p.add_argument("--train-split", help="generic: GT subset used for training.")
    p.add_argument(
        "--val-split", help="generic: GT subset used for validation (default: held out of train)."
    )
    p.add_argument("--test-split", help="generic: GT subset used for testing.")
    p.add_argument(
        "--tiou",
        help="generic: tIoU thresholds, comma-separated (default ActivityNet 0.5:0.05:0.95).",
    )
    p.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.1,
        help="Stored default fraction of train held out as val where there is no val split "
        "(default 0.1).",
    )
    p.add_argument(
        "--skip-missing", action="store_true", help="Skip videos whose feature file is missing."
    )
    p.add_argument(
        "--overwrite", action="store_true", help="Replace a complete dataset of the same config."
    )
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    return p


PROGRAM = "avloc build-data"
_fail = functools.partial(messages.fail, PROGRAM)


def _paths(args: argparse.Namespace) -> dict[str, str]:
    paths = {
        k: getattr(args, k) for k in ("annotations", "visual", "audio", "labels", "gt", "classes")
    }
    paths = {k: v for k, v in paths.items() if v}
    for item in args.path:
        if "=" not in item:
            raise ValueError(f"--path expects NAME=PATH, got {item!r}")
        key, value = item.split("=", 1)
        paths[key.strip()] = value
    return paths


def _tiou(spec: str) -> list[float]:
    try:
        values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"--tiou expects comma-separated numbers in [0, 1], got {spec!r}")
    return values


def _not_custom_config_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Using custom data configuration")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("avloc").setLevel(logging.INFO)  # our stage messages; TFDS stays quiet
    # A generic dataset's config is made at run time, which TFDS reports as a warning.
    logging.getLogger("absl").addFilter(_not_custom_config_notice)
    if args.weak and args.dataset != "ave":
        return _fail("--weak applies to ave only", 2)
    builder_kwargs: dict[str, Any] = {
        "skip_missing": args.skip_missing,
        "heldout_fraction": args.heldout_fraction,
    }
    generic_flags = (
        args.name,
        args.train_split,
        args.val_split,
        args.test_split,
        args.tiou,
        args.gt,
        args.classes,
    )
    try:
        if args.dataset == "generic":
            if args.train_split or args.test_split or args.val_split:
                if not (args.train_split and args.test_split):
                    return _fail("give both --train-split and --test-split", 2)
                builder_kwargs["split_roles"] = {
                    "train": args.train_split,
                    "val": args.val_split,
                    "test": args.test_split,
                }
            if args.tiou:
                builder_kwargs["tiou_thresholds"] = _tiou(args.tiou)
        elif any(generic_flags):
            return _fail("--name/--gt/--classes/--*-split/--tiou apply to generic only", 2)
        paths = _paths(args)
    except ValueError as err:
        return _fail(str(err), 2)
    config = "weak" if args.weak else (args.name or "default")
    try:
        path = build(
            args.dataset,
            args.data_dir,
            builder_config=config,
            paths=paths,
            manual_dir=args.manual_dir,
            overwrite=args.overwrite,
            builder_kwargs=builder_kwargs,
            show_progress=not args.quiet,
        )
    except BuildRefused as err:
        return _fail(str(err), 1)
    except (DataError, ValueError) as err:
        return _fail(str(err), 1)
    except OSError as err:  # e.g. a data dir that cannot be created or written
        return _fail(f"{err.filename or args.data_dir}: {err.strerror or err}", 1)
    print(summary(path))
    return 0
