"""`avloc build-data DATASET --data-dir D [--manual-dir M | path flags] [--overwrite] [--weak]`.

Runs one of the TFDS builders in `tfds_builders` (ArrayRecord, no TensorFlow) with
`tfds_builders.build.build`: the build goes to a temporary folder inside D and is renamed
into ``D/<name>/<config>/<version>`` only when complete, so a failed or interrupted build
leaves no partial dataset. A complete dataset is not replaced unless --overwrite is given.
The inputs (--manual-dir, the paths, every required file) are checked before anything is
written; a failed build leaves nothing new in D (a D that did not exist still does not).
Errors: one line ``avloc build-data: error: ...`` on stderr, exit 2 for bad options, 1
for bad or missing input files.

`generic` from a folder that `avloc extract-features` wrote (--visual F/visual --audio
F/audio, or --manual-dir F): F's manifest parts must be merged (`avloc extract-features
--merge F`), and the ground-truth videos that F/failures.json lists and that have no
features are left out, named in one note line (any other video without features is
still an error, unless --skip-missing).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import Any

from avloc_jax.cli import messages
from avloc_jax.common.wording import plural
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
_note = functools.partial(messages.note, PROGRAM)


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
    note = None
    if args.dataset == "generic":
        try:
            note = _failed_videos_note(args, paths)
        except (DataError, ValueError, OSError) as err:
            return _fail(str(err), 1)
        if note is not None:
            builder_kwargs["skip_missing"] = True
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
    if note is not None:
        _note(note)
    return 0


def _extraction_folder(args: argparse.Namespace, paths: dict[str, str]) -> Path | None:
    """The folder that `avloc extract-features` wrote, when --visual and --audio (given,
    or under --manual-dir) are its visual/ and audio/; else None."""
    from avloc_jax.extraction import records, shards

    manual = Path(args.manual_dir).expanduser() if args.manual_dir else None
    folders = []
    for name, default in (("visual", records.VISUAL_DIR), ("audio", records.AUDIO_DIR)):
        if name in paths:
            folders.append(Path(paths[name]).expanduser())
        elif manual is not None:
            folders.append(manual / default)
        else:
            return None
    parents = {folder.absolute().parent for folder in folders}
    if len(parents) != 1 or [f.name for f in folders] != [records.VISUAL_DIR, records.AUDIO_DIR]:
        return None
    folder = parents.pop()
    if (folder / records.MANIFEST_FILE).is_file() or shards.find_parts(folder):
        return folder
    return None


def _failed_videos_note(args: argparse.Namespace, paths: dict[str, str]) -> str | None:
    """When a `generic` build leaves out ground-truth videos whose extraction failed (they
    have no features), the note naming them; else None. A DataError for unmerged manifest
    parts, or for other videos without features (unless --skip-missing)."""
    from avloc_jax.data import annotations as ann
    from avloc_jax.extraction import records, shards
    from tfds_builders import common, get_builder_class

    folder = _extraction_folder(args, paths)
    if folder is None:
        return None
    unmerged = shards.unmerged_parts(folder)
    if unmerged:
        raise DataError(
            f"{folder} holds manifest parts newer than its {records.MANIFEST_FILE} "
            f"({messages.some([p.name for p in unmerged], 3)}): merge them first with "
            f"avloc extract-features --merge {folder}"
        )
    failures = {f["id"]: f for f in records.read_failures(folder)}
    if not failures:
        return None
    gt = paths.get("gt")
    if gt is None and args.manual_dir:
        names = get_builder_class("generic").INPUTS["gt"]
        found = [Path(args.manual_dir).expanduser() / n for n in names]
        gt = next((str(p) for p in found if p.is_file()), None)
    if gt is None:
        return None  # the build names the missing ground truth
    stores = [common.FolderStore(folder / records.VISUAL_DIR)]
    stores.append(common.FolderStore(folder / records.AUDIO_DIR))

    def has_features(video_id: str) -> bool:
        return all(any(Path(c).is_file() for c in s.candidates(video_id)) for s in stores)

    videos = [v.video_id for v in ann.read_ground_truth_json(Path(gt).expanduser())]
    missing = [v for v in videos if not has_features(v)]
    left_out = [v for v in missing if v in failures]
    others = [v for v in missing if v not in failures]
    if others and left_out and not args.skip_missing:
        one = len(others) == 1
        raise DataError(
            f"{folder}: {plural(len(others), 'video')} of {gt} {'has' if one else 'have'} no "
            f"features and did not fail either ({messages.some(others)}): extract "
            f"{'it' if one else 'them'} first, or pass --skip-missing"
        )
    if not left_out:
        return None
    return (
        f"note: {plural(len(left_out), 'video')} of {gt} left out, "
        f"{'its' if len(left_out) == 1 else 'their'} extraction failed "
        f"({folder / records.FAILURES_FILE}): {messages.some(left_out)}"
    )
