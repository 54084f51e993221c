"""Temporal detection mAP with the official ActivityNet algorithm, vectorised.

The algorithm is the one of `compute_average_precision_detection` in
`Evaluation/eval_detection.py` of activitynet/ActivityNet (written here from its
description in METHOD_NOTES §5; no code copied):

* The class set is the set of labels in the evaluated ground truth (after the subset
  filter), in order of first appearance; mAP is the mean AP over these classes.
* Per class, the predictions of that class are taken in file order (videos in the order of
  `results`, then each video's list) and visited in the order `np.argsort(scores)[::-1]`.
* A prediction on a video that has no ground truth of its class is a false positive.
* Otherwise `tiou = segment_iou(prediction, ground truths of that video and class)`, the
  ground truths in file order, and they are tried in the order `np.argsort(tiou)[::-1]`.
  At each tIoU threshold: the first ground truth in that order with tIoU < threshold ends
  the search (false positive); one already locked at that threshold is skipped; the first
  other one makes the prediction a true positive and is locked.
* rec = cumTP / npos, prec = cumTP / (cumTP + cumFP); AP is VOC2011-interpolated:
  mprec = [0, prec, 0], mrec = [0, rec, 1], running max of mprec from right to left, then
  the sum of Δrec · mprec where rec changes. A class without predictions has AP 0.
* tIoU is in continuous time: inter = max(0, min(e) - max(s)), union = len_a + len_b - inter.

Ties follow the official calls exactly, not a re-derived rule. Among equal scores (or equal
tIoUs) the order is whatever numpy's default argsort returns, reversed. That order is not a
fixed rule: numpy's default sort is unstable, and on CPUs where numpy dispatches to SIMD
sorting networks (x86-simd-sort with AVX-512, for instance) already 4 equal values come out
in no simple order. So this module calls `np.argsort(...)[::-1]` itself, on arrays that hold
the same values in the same order and with the same dtype as the official code's arrays:

* scores: one call per class, on the scores of every prediction of that class with a known
  label, in file order (int64 when every score of the file is a JSON integer, as pandas
  would store them, else float64). Predictions this module ignores (below) take part in
  that call and are dropped afterwards, so they cannot change the order of the others;
* tIoUs: the pairwise tIoUs are computed with the official formula and operation order, so
  they are bitwise equal to the official `tiou_arr`. A prediction whose candidate tIoUs
  (those >= the smallest threshold) are all distinct has only one possible order; for a
  prediction with a tie among them, `np.argsort` is called on its whole tIoU array.

The guarantee is therefore relative to the numpy running this module: for any input to
which none of the deviations below applies, the matches are those the official code makes
under the same numpy build on the same machine (as a Python 3 port; under Python 2 it
visits the videos of `results` in hash order). The AP sums use the official selection of
terms and summation order, so AP and mAP come out bitwise equal, not just close.

Deviations. Ignored predictions are announced with a `DetectionEvalWarning` that counts
them (the official code raises, or counts them as false positives):

* predictions whose label is not a class of the evaluated ground truth are ignored;
* predictions on videos absent from the evaluated ground truth (e.g. another subset) are
  ignored;
* predictions with a non-finite score or segment bound are ignored.

And, silently: a zero union (e.g. two zero-length segments at the same instant) has tIoU 0;
the official code divides by zero there, gets NaN, and NaN passes its `tiou < threshold`
test, so it matches at every threshold.

Predictions with a reversed segment (start > end) are scored as the official code scores
them (tIoU 0 with every ground truth), with a warning that counts them. Malformed entries
raise `DetectionFormatError`, which names the video and the entry (and the file, through
`evaluate_detection_files`); the layout and its checks are those of
`avloc_jax.data.activitynet_json`, the one module that reads and writes the format.

The tIoU, matching and AP core on arrays is `detection_matching`; this module parses and
checks the JSON (through `data.activitynet_json`), counts, warns and reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avloc_jax.common.wording import plural
from avloc_jax.data import activitynet_json
from avloc_jax.evaluation.detection_matching import (
    interpolated_average_precision,
    match,
    official_visiting_order,
    segment_iou,
)


class DetectionEvalWarning(UserWarning):
    """Predictions were ignored (unknown label or video, non-finite values) or look wrong."""


# A malformed ground-truth or prediction entry (the ActivityNet JSON module's error).
DetectionFormatError = activitynet_json.FormatError

__all__ = [  # segment_iou and interpolated_average_precision: from detection_matching
    "DetectionEvalWarning",
    "DetectionFormatError",
    "evaluate_detection_files",
    "evaluate_detections",
    "interpolated_average_precision",
    "parse_tiou_thresholds",
    "segment_iou",
]


# ---------------------------------------------------------------------------------------
# Parsing


def _parse_ground_truth(
    ground_truth: Mapping[str, Any], subset: str | None
) -> tuple[dict[str, int], dict[Any, int], np.ndarray, np.ndarray, np.ndarray]:
    """Returns (video index, class index, gt video [G], gt class [G], gt segments [G, 2])."""
    source = activitynet_json.GROUND_TRUTH
    keys = activitynet_json.ANNOTATION_KEYS
    annotations = activitynet_json.ground_truth_lists(ground_truth, subset, source)
    lists = list(annotations.values())
    labels, _, bounds = activitynet_json.entry_columns(source, annotations, keys, "annotation")
    if not labels:
        raise ValueError(f"ground truth has no annotation in subset {subset!r}; mAP is undefined")
    video_index = {video_id: v for v, video_id in enumerate(annotations)}
    lengths = np.fromiter(map(len, lists), np.int64, len(lists))
    class_index: dict[Any, int] = {}
    try:
        gt_class = [class_index.setdefault(label, len(class_index)) for label in labels]
    except TypeError:  # an unhashable label
        activitynet_json.raise_first_bad_entry(source, annotations, keys, "annotation")
    segments = np.asarray(bounds, np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(segments)):
        raise ValueError("ground truth contains non-finite segment bounds")
    return (
        video_index,
        class_index,
        np.repeat(np.arange(len(lists)), lengths),
        np.asarray(gt_class, np.int64),
        segments,
    )


@dataclasses.dataclass(frozen=True)
class _Predictions:
    """Every prediction of the file, in file order; `keep` marks those that are scored."""

    video: np.ndarray  # int64 [N]; -1: video absent from the evaluated ground truth
    cls: np.ndarray  # int64 [N]; -1: label absent from the evaluated ground truth
    segments: np.ndarray  # float64 [N, 2]
    score: np.ndarray  # float64 [N]
    sort_key: np.ndarray  # [N] the values the official code sorts: int64 or float64
    keep: np.ndarray  # bool [N]
    counts: dict[str, int]


def _parse_predictions(
    predictions: Mapping[str, Any],
    video_index: Mapping[str, int],
    class_index: Mapping[Any, int],
) -> _Predictions:
    """Converts the prediction dicts to arrays (file order), checks them and warns."""
    source, keys = activitynet_json.PREDICTIONS, activitynet_json.PREDICTION_KEYS
    results = activitynet_json.prediction_lists(predictions, source)
    video_ids = list(results)
    lists = list(results.values())
    labels, scores, bounds = activitynet_json.entry_columns(source, results, keys, "entry")
    try:
        cls = np.asarray([class_index.get(label, -1) for label in labels], np.int64)
    except TypeError:  # an unhashable label
        activitynet_json.raise_first_bad_entry(source, results, keys, "entry")
    lengths = np.fromiter(map(len, lists), np.int64, len(lists))
    video_position = np.repeat(np.arange(len(lists)), lengths)  # index into video_ids
    entry = np.arange(len(labels)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    known_video = np.asarray([video_index.get(v, -1) for v in video_ids], np.int64)
    video = known_video[video_position]
    segs = np.asarray(bounds, np.float64).reshape(-1, 2)
    score = np.asarray(scores, np.float64)
    sort_key = score
    if set(map(type, scores)) == {int}:
        # pandas stores a column of Python ints as int64, and the official code argsorts
        # that column; sort the same dtype so that the same kernel runs.
        # On overflow pandas would fall back to another dtype too; float64 is the best guess.
        with contextlib.suppress(OverflowError):
            sort_key = np.asarray(scores, np.int64)

    def where(i: int) -> str:
        return f"video {video_ids[video_position[i]]!r}, entry {entry[i]} (0-based)"

    unknown_label = cls < 0
    unknown_video = (video < 0) & ~unknown_label
    finite = np.isfinite(score) & np.all(np.isfinite(segs), axis=1)
    non_finite = ~finite & ~unknown_label & ~unknown_video
    keep = ~(unknown_label | unknown_video | non_finite)
    reversed_segment = keep & (segs[:, 0] > segs[:, 1])
    counts = {
        "num_ignored_unknown_label": int(unknown_label.sum()),
        "num_ignored_unknown_video": int(unknown_video.sum()),
        "num_ignored_non_finite": int(non_finite.sum()),
        "num_reversed_segments": int(reversed_segment.sum()),
    }
    if counts["num_ignored_unknown_label"]:
        unknown = sorted({str(labels[i]) for i in np.flatnonzero(unknown_label)})
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        warnings.warn(
            f"ignored {plural(counts['num_ignored_unknown_label'], 'prediction')} whose label "
            f"is not a ground-truth class ({plural(len(unknown), 'label')}: {shown})",
            DetectionEvalWarning,
            stacklevel=3,
        )
    if counts["num_ignored_unknown_video"]:
        num_videos = len(np.unique(video_position[unknown_video]))
        warnings.warn(
            f"ignored {plural(counts['num_ignored_unknown_video'], 'prediction')} on "
            f"{plural(num_videos, 'video')} absent from the evaluated ground truth",
            DetectionEvalWarning,
            stacklevel=3,
        )
    if counts["num_ignored_non_finite"]:
        first = int(np.flatnonzero(non_finite)[0])
        warnings.warn(
            f"ignored {plural(counts['num_ignored_non_finite'], 'prediction')} with a "
            f"non-finite score or segment (the first: {where(first)})",
            DetectionEvalWarning,
            stacklevel=3,
        )
    if counts["num_reversed_segments"]:
        first = int(np.flatnonzero(reversed_segment)[0])
        warnings.warn(
            f"{plural(counts['num_reversed_segments'], 'prediction')} "
            f"{'has' if counts['num_reversed_segments'] == 1 else 'have'} a reversed segment, "
            "start > end "
            f"(the first: {where(first)}, {segs[first].tolist()}); they are scored as the "
            "official code scores them: tIoU 0 with every ground truth, so false positives at "
            "any threshold above 0",
            DetectionEvalWarning,
            stacklevel=3,
        )
    return _Predictions(video, cls, segs, score, sort_key, keep, counts)


def evaluate_detections(
    ground_truth: Mapping[str, Any],
    predictions: Mapping[str, Any],
    tiou_thresholds: Sequence[float],
    subset: str | None = None,
) -> dict[str, Any]:
    """Detection mAP of ActivityNet-format predictions against ActivityNet-format ground truth.

    Args:
      ground_truth: `{"database": {video_id: {"subset", "duration", "annotations":
        [{"label", "segment": [s, e]}]}}}`.
      predictions: `{"results": {video_id: [{"label", "score", "segment": [s, e]}]}}`.
      tiou_thresholds: any sequence of tIoU thresholds (e.g. linspace(0.5, 0.95, 10)).
      subset: keep only ground-truth videos whose "subset" equals this; None keeps all.

    Returns:
      dict with `tiou_thresholds` [K], `mAP` [K], `average_mAP`, `per_class_ap`
      ({class label: [K]} in order of first appearance in the ground truth), `recall` [K]
      (matched GT / all GT), and the counts `num_classes`, `num_videos`,
      `num_ground_truth`, `num_predictions` (used), `num_ignored_unknown_label`,
      `num_ignored_unknown_video`, `num_ignored_non_finite`, `num_reversed_segments`
      (scored).

    Raises:
      DetectionFormatError (a ValueError) naming the video and entry of a malformed one.

    Ties among equal scores and equal tIoUs are broken exactly as the official code's
    numpy calls break them (see the module docstring).
    """
    thresholds = np.asarray(tiou_thresholds, np.float64).reshape(-1)
    if thresholds.size == 0:
        raise ValueError("at least one tIoU threshold is needed")
    video_index, class_index, gt_video, gt_class, gt_segments = _parse_ground_truth(
        ground_truth, subset
    )
    parsed = _parse_predictions(predictions, video_index, class_index)
    num_classes, num_videos = len(class_index), len(video_index)

    order = official_visiting_order(parsed.cls, parsed.sort_key, parsed.keep, num_classes)
    video, cls, segments = parsed.video[order], parsed.cls[order], parsed.segments[order]
    group = cls * num_videos + video
    gt_group = gt_class * num_videos + gt_video
    gt_order = np.argsort(gt_group, kind="stable")
    tp = match(group, segments, gt_group[gt_order], gt_segments[gt_order], thresholds)

    npos = np.bincount(gt_class, minlength=num_classes)
    class_bounds = np.searchsorted(cls, np.arange(num_classes + 1), "left")
    # [K, C] like the official `ap`, so that the mean over classes sums in its order.
    ap = np.zeros((len(thresholds), num_classes))
    for c in range(num_classes):
        a, b = class_bounds[c], class_bounds[c + 1]
        if a == b:
            continue  # no prediction of this class: AP 0
        cum_tp = np.cumsum(tp[:, a:b], axis=1, dtype=np.float64)
        cum_fp = np.cumsum(~tp[:, a:b], axis=1, dtype=np.float64)
        recall = cum_tp / float(npos[c])
        precision = cum_tp / (cum_tp + cum_fp)
        ap[:, c] = interpolated_average_precision(precision, recall)

    mean_ap = ap.mean(axis=1)
    labels = sorted(class_index, key=lambda label: class_index[label])
    return {
        "tiou_thresholds": [float(t) for t in thresholds],
        "mAP": [float(x) for x in mean_ap],
        "average_mAP": float(mean_ap.mean()),
        "per_class_ap": {
            str(label): [float(x) for x in ap[:, class_index[label]]] for label in labels
        },
        "recall": [float(x) for x in tp.sum(axis=1) / len(gt_class)],
        "num_classes": num_classes,
        "num_videos": num_videos,
        "num_ground_truth": len(gt_class),
        "num_predictions": len(cls),
        **parsed.counts,
    }


# ---------------------------------------------------------------------------------------
# Files and thresholds


def evaluate_detection_files(
    ground_truth_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    tiou_thresholds: Sequence[float],
    subset: str | None = None,
) -> dict[str, Any]:
    """`evaluate_detections` on two JSON files; format errors name the file."""
    ground_truth = activitynet_json.load_json(ground_truth_path, activitynet_json.GROUND_TRUTH_FILE)
    predictions = activitynet_json.load_json(predictions_path, activitynet_json.PREDICTIONS_FILE)
    try:
        return evaluate_detections(ground_truth, predictions, tiou_thresholds, subset)
    except DetectionFormatError as err:
        if err.source == activitynet_json.GROUND_TRUTH:
            raise err.in_file(ground_truth_path, activitynet_json.GROUND_TRUTH_FILE) from None
        raise err.in_file(predictions_path, activitynet_json.PREDICTIONS_FILE) from None


def parse_tiou_thresholds(spec: str) -> tuple[float, ...]:
    """'0.5:0.95:10' -> linspace(0.5, 0.95, 10); '0.1,0.3,0.5' -> that list.

    Values are rounded to 10 decimals so that linspace noise (0.6000000000000001) does not
    leak into reports; the rounding is far below any tIoU that matters.
    """
    spec = spec.strip()
    try:
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            values = np.linspace(start, stop, num)
        else:
            values = np.asarray([float(x) for x in spec.split(",") if x.strip()])
            if values.size == 0:
                raise ValueError
    except ValueError:
        raise ValueError(
            f"bad tIoU specification {spec!r}: use START:STOP:NUM or a comma-separated list"
        ) from None
    if np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"tIoU thresholds must lie in [0, 1]; got {spec!r}")
    return tuple(float(round(v, 10)) for v in values)
