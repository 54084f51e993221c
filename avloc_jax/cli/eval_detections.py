"""`avloc eval-detections --ground-truth GT.json --predictions PRED.json [--subset S]
[--tiou SPEC] [--json]`.

Scores ActivityNet-format detections with the official ActivityNet mAP algorithm
(`avloc_jax.evaluation.detection_eval`). `--tiou 0.5:0.95:10` means linspace(0.5, 0.95, 10) (the
ActivityNet protocol, the default); `--tiou 0.1,0.2,0.3` is a list (THUMOS14 uses
0.1:0.7:7). Warnings about ignored predictions go to stderr; the result goes to stdout,
as one JSON object with `--json`, else as a table.

Exit status: 0 on success; 1 when a file cannot be read or is malformed; 2 when no
prediction has a label of the ground truth (nothing could be scored). Errors are one line
``avloc eval-detections: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from avloc_jax.cli import messages
from avloc_jax.data import activitynet_json
from avloc_jax.evaluation import detection_eval

PROG = "avloc eval-detections"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " ")
    )
    parser.add_argument(
        "--ground-truth", required=True, metavar="GT.json", help="ActivityNet-format ground truth."
    )
    parser.add_argument(
        "--predictions", required=True, metavar="PRED.json", help="ActivityNet-format predictions."
    )
    parser.add_argument(
        "--subset",
        default=None,
        help="Evaluate only ground-truth videos of this subset (default: every video).",
    )
    parser.add_argument(
        "--tiou", default="0.5:0.95:10", help="START:STOP:NUM (linspace) or a comma list."
    )
    parser.add_argument(
        "--json", action="store_true", help="Print one JSON object instead of a table."
    )
    return parser


def _table(result: dict[str, Any], args: argparse.Namespace) -> str:
    thresholds = result["tiou_thresholds"]
    subset = "every subset" if args.subset is None else f"subset {args.subset!r}"
    lines = [
        f"ground truth: {args.ground_truth} ({subset}): "
        f"{messages.plural(result['num_videos'], 'video')}, "
        f"{messages.plural(result['num_ground_truth'], 'segment')}, "
        f"{messages.plural(result['num_classes'], 'class')}",
        f"predictions:  {args.predictions}: {result['num_predictions']} scored; ignored "
        f"{result['num_ignored_unknown_label']} unknown-label, "
        f"{result['num_ignored_unknown_video']} "
        f"unknown-video, {result['num_ignored_non_finite']} non-finite",
        "",
        f"{'tIoU':>6}  {'mAP':>7}  {'recall':>7}",
    ]
    for thr, value, recall in zip(thresholds, result["mAP"], result["recall"]):
        lines.append(f"{thr:>6.3g}  {100 * value:>6.2f}%  {100 * recall:>6.2f}%")
    lines.append(f"{'avg':>6}  {100 * result['average_mAP']:>6.2f}%")
    lines += ["", "per-class AP (%), one column per tIoU, then the mean:"]
    width = max([len("class")] + [len(name) for name in result["per_class_ap"]])
    lines.append(f"{'class':<{width}}  " + " ".join(f"{t:>6.3g}" for t in thresholds) + "    mean")
    for name, aps in result["per_class_ap"].items():
        lines.append(
            f"{name:<{width}}  "
            + " ".join(f"{100 * a:>6.2f}" for a in aps)
            + f"  {100 * sum(aps) / len(aps):>6.2f}"
        )
    return "\n".join(lines)


def _no_known_label(result: dict[str, Any], args: argparse.Namespace) -> str:
    """The error when no prediction has a ground-truth label: a few of the unknown labels
    and of the ground truth's, with their counts, and both files."""
    predictions = activitynet_json.read_predictions(args.predictions)
    by_video = activitynet_json.predictions_by_video(predictions)
    unknown = sorted({p.label for entries in by_video.values() for p in entries})
    known = list(result["per_class_ap"])
    subset = "" if args.subset is None else f" (subset {args.subset!r})"
    return (
        f"none of the {messages.plural(result['num_ignored_unknown_label'], 'prediction')} in "
        f"{args.predictions} has a label of the ground truth {args.ground_truth}{subset}: "
        f"{messages.plural(len(unknown), 'unknown label')} ({messages.some(unknown)}); the "
        f"ground truth has {messages.plural(len(known), 'class')} ({messages.some(known)})"
    )


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    try:
        thresholds = detection_eval.parse_tiou_thresholds(args.tiou)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", detection_eval.DetectionEvalWarning)
            result = detection_eval.evaluate_detection_files(
                args.ground_truth, args.predictions, thresholds, subset=args.subset
            )
    except (OSError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, AttributeError) as err:
        # A structurally wrong entry (e.g. an annotation without "segment").
        print(
            f"{PROG}: error: malformed ground truth {args.ground_truth!r} "
            f"or predictions {args.predictions!r} "
            f"({type(err).__name__}: {err})",
            file=sys.stderr,
        )
        return 1
    ignored = result["num_ignored_unknown_label"]
    total = (
        result["num_predictions"]
        + ignored
        + result["num_ignored_unknown_video"]
        + result["num_ignored_non_finite"]
    )
    if ignored and ignored == total:
        # Every prediction ignored: a table of 0 % would hide a mismatch of class names.
        return messages.fail(PROG, _no_known_label(result, args), 2)
    for warning in caught:
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    if args.json:
        paths = {
            "ground_truth": args.ground_truth,
            "predictions": args.predictions,
            "subset": args.subset,
        }
        print(json.dumps({**result, **paths}))
    else:
        print(_table(result, args))
    return 0
