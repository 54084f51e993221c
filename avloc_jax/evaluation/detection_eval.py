"""Temporal detection mAP with the official ActivityNet algorithm, vectorised.

The algorithm is the one of `Evaluation/eval_detection.py` in activitynet/ActivityNet
(written here from its description in METHOD_NOTES §5, no code copied):

* The class set is the set of labels in the evaluated ground truth (after the subset
  filter), in order of first appearance; mAP is the mean AP over these classes.
* Per class, predictions are sorted by score, descending.
* A prediction on a video that has no ground truth of its class is a false positive.
* Otherwise the video's ground truths of that class are visited in descending tIoU order;
  at each tIoU threshold the prediction is a true positive on the first ground truth with
  tIoU >= threshold that no earlier prediction has locked at that threshold (it then
  locks it), and a false positive if there is none.
* rec = cumTP / npos, prec = cumTP / (cumTP + cumFP); AP is VOC2011-interpolated:
  mprec = [0, prec, 0], mrec = [0, rec, 1], running max of mprec from right to left, then
  the sum of Δrec · mprec where rec changes. A class without predictions has AP 0.
* tIoU is in continuous time: inter = max(0, min(e) - max(s)), union = len_a + len_b - inter.

Deterministic rules where the official code is not (documented in docs/evaluation.md):

* **Score ties** are broken by input order: predictions are visited by descending score,
  and among equal scores in the order they appear in the prediction JSON (videos in the
  order of `results`, then list order). The official code uses an unstable argsort.
* **tIoU ties** between ground truths of one video and class are broken by ground-truth
  order: the one that comes first in the ground-truth JSON is tried first.
* A zero union (two zero-length segments at the same instant) has tIoU 0; the official
  code divides by zero there and gets NaN.

Deviations made for robustness, each announced with a `DetectionEvalWarning` that counts
the predictions concerned (the official code raises, or counts them as false positives):

* predictions whose label is not a class of the evaluated ground truth are ignored;
* predictions on videos absent from the evaluated ground truth (e.g. another subset) are
  ignored;
* predictions with a non-finite score or segment bound are ignored.

Ground-truth videos without any prediction simply contribute misses (lower recall).

Speed: every (prediction, ground truth) pair of the same video and class gets its tIoU in
one vectorised pass. The greedy locking is inherently sequential within one (video, class)
group, but groups are independent, so it runs in "rounds": round r handles the r-th
prediction (in score order) of every group at once, for all thresholds at once. The
number of rounds is the largest number of overlapping predictions in one group, not the
number of predictions.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Any, Mapping, Sequence

import numpy as np


class DetectionEvalWarning(UserWarning):
    """Predictions were ignored (unknown label, unknown video, non-finite values)."""


# ---------------------------------------------------------------------------------------
# Parsing


def _parse_ground_truth(
    ground_truth: Mapping[str, Any], subset: str | None
) -> tuple[dict[str, int], dict[Any, int], np.ndarray, np.ndarray, np.ndarray]:
    """Returns (video index, class index, gt video [G], gt class [G], gt segments [G, 2])."""
    if "database" not in ground_truth:
        raise ValueError("ground truth has no 'database' key (expected the ActivityNet GT JSON layout)")
    database = ground_truth["database"]
    video_index: dict[str, int] = {}
    class_index: dict[Any, int] = {}
    gt_video, gt_class, gt_segments = [], [], []
    for video_id, entry in database.items():
        if subset is not None and entry.get("subset") != subset:
            continue
        v = video_index.setdefault(video_id, len(video_index))
        for annotation in entry.get("annotations", ()):
            c = class_index.setdefault(annotation["label"], len(class_index))
            gt_video.append(v)
            gt_class.append(c)
            gt_segments.append(annotation["segment"])
    if not video_index:
        subsets = sorted({str(e.get("subset")) for e in database.values()})
        raise ValueError(f"ground truth has no video in subset {subset!r}; subsets present: {subsets}")
    if not gt_video:
        raise ValueError(f"ground truth has no annotation in subset {subset!r}; mAP is undefined")
    segments = _as_segments(gt_segments, "ground truth")
    if not np.all(np.isfinite(segments)):
        raise ValueError("ground truth contains non-finite segment bounds")
    return video_index, class_index, np.asarray(gt_video, np.int64), np.asarray(gt_class, np.int64), segments


def _as_segments(segments: list, what: str) -> np.ndarray:
    try:
        array = np.asarray(segments, dtype=np.float64).reshape(len(segments), -1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: every 'segment' must be a pair of numbers ({err})") from None
    if array.shape[1] != 2:
        raise ValueError(f"{what}: every 'segment' must be a pair [start, end]; got {array.shape[1]} values")
    return array


def _parse_predictions(
    predictions: Mapping[str, Any], video_index: Mapping[str, int], class_index: Mapping[Any, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Returns (video [P], class [P], segments [P, 2], scores [P], ignored counts), in input order."""
    if "results" not in predictions:
        raise ValueError("predictions have no 'results' key (expected the ActivityNet prediction JSON layout)")
    videos, labels, segments, scores, entry = [], [], [], [], []
    for position, (video_id, detections) in enumerate(predictions["results"].items()):
        v = video_index.get(video_id, -1)
        videos.extend([v] * len(detections))
        entry.extend([position] * len(detections))
        labels.extend(d["label"] for d in detections)
        segments.extend(d["segment"] for d in detections)
        scores.extend(d["score"] for d in detections)
    video = np.asarray(videos, np.int64)
    cls = np.asarray([class_index.get(label, -1) for label in labels], np.int64)
    segs = _as_segments(segments, "predictions") if segments else np.zeros((0, 2))
    score = np.asarray(scores, np.float64)
    unknown_label = cls < 0
    unknown_video = (video < 0) & ~unknown_label
    non_finite = ~(np.isfinite(score) & np.all(np.isfinite(segs), axis=1)) & ~unknown_label & ~unknown_video
    counts = {
        "num_ignored_unknown_label": int(unknown_label.sum()),
        "num_ignored_unknown_video": int(unknown_video.sum()),
        "num_ignored_non_finite": int(non_finite.sum()),
    }
    if counts["num_ignored_unknown_label"]:
        unknown = sorted({str(labels[i]) for i in np.flatnonzero(unknown_label)})
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        warnings.warn(
            f"ignored {counts['num_ignored_unknown_label']} predictions whose label is not a ground-truth "
            f"class ({len(unknown)} labels: {shown})",
            DetectionEvalWarning,
            stacklevel=3,
        )
    if counts["num_ignored_unknown_video"]:
        num_videos = len(np.unique(np.asarray(entry)[unknown_video]))
        warnings.warn(
            f"ignored {counts['num_ignored_unknown_video']} predictions on {num_videos} videos absent from "
            "the evaluated ground truth",
            DetectionEvalWarning,
            stacklevel=3,
        )
    if counts["num_ignored_non_finite"]:
        warnings.warn(
            f"ignored {counts['num_ignored_non_finite']} predictions with a non-finite score or segment",
            DetectionEvalWarning,
            stacklevel=3,
        )
    keep = ~(unknown_label | unknown_video | non_finite)
    return video[keep], cls[keep], segs[keep], score[keep], counts


# ---------------------------------------------------------------------------------------
# Core


def segment_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise continuous-time tIoU of aligned segments a [..., 2] and b [..., 2].

    inter = max(0, min(ends) - max(starts)), union = len_a + len_b - inter; a union <= 0
    (coincident zero-length segments) gives 0 rather than NaN.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    union = (b[..., 1] - b[..., 0]) + (a[..., 1] - a[..., 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match(
    group: np.ndarray,
    pred_segments: np.ndarray,
    gt_group_sorted: np.ndarray,
    gt_segments_sorted: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Greedy official matching. Returns tp bool [K, P].

    Args:
      group: int64 [P] (class, video) key of each prediction; predictions are already in
        visiting order (class, descending score, input order).
      pred_segments: [P, 2].
      gt_group_sorted: int64 [G] keys of the ground truths, sorted ascending (stable, so
        within a group the ground-truth input order is kept).
      gt_segments_sorted: [G, 2] in the same order.
      thresholds: [K] tIoU thresholds.
    """
    num_thr, num_pred, num_gt = len(thresholds), len(group), len(gt_group_sorted)
    tp = np.zeros((num_thr, num_pred), bool)
    lo = np.searchsorted(gt_group_sorted, group, "left")
    count = np.searchsorted(gt_group_sorted, group, "right") - lo  # GTs in the prediction's group
    if count.sum() == 0:
        return tp
    # All (prediction, same-group GT) pairs, flattened.
    pair_pred = np.repeat(np.arange(num_pred), count)
    first_pair = np.cumsum(count) - count
    pair_gt = np.repeat(lo, count) + (np.arange(len(pair_pred)) - np.repeat(first_pair, count))
    pair_iou = segment_iou(pred_segments[pair_pred], gt_segments_sorted[pair_gt])
    # A pair below every threshold can never match; dropping it changes nothing.
    keep = pair_iou >= thresholds.min()
    pair_pred, pair_gt, pair_iou = pair_pred[keep], pair_gt[keep], pair_iou[keep]
    if len(pair_pred) == 0:
        return tp
    # Round of a candidate prediction = its rank among the candidates of its group (in
    # visiting order). One round holds at most one prediction per group, so the
    # predictions of one round never compete and can be matched simultaneously.
    candidates = np.unique(pair_pred)  # ascending = visiting order
    cand_group = group[candidates]
    by_group = np.argsort(cand_group, kind="stable")
    sorted_group = cand_group[by_group]
    group_start = np.searchsorted(sorted_group, sorted_group, "left")
    rank = np.empty(len(candidates), np.int64)
    rank[by_group] = np.arange(len(candidates)) - group_start
    pred_round = np.zeros(num_pred, np.int64)
    pred_round[candidates] = rank
    # Pairs ordered by (round, prediction, descending tIoU, ground-truth order).
    order = np.lexsort((pair_gt, -pair_iou, pair_pred, pred_round[pair_pred]))
    pair_pred, pair_gt, pair_iou = pair_pred[order], pair_gt[order], pair_iou[order]
    pair_round = pred_round[pair_pred]
    num_rounds = int(pair_round[-1]) + 1
    round_bounds = np.searchsorted(pair_round, np.arange(num_rounds + 1), "left")
    # First pair of each prediction's run (pairs of one prediction are contiguous).
    run_start = np.flatnonzero(np.r_[True, pair_pred[1:] != pair_pred[:-1]])
    run_bounds = np.searchsorted(run_start, round_bounds, "left")

    locked = np.zeros((num_thr, num_gt), bool)
    thr = thresholds[:, None]
    for r in range(num_rounds):
        a, b = round_bounds[r], round_bounds[r + 1]
        gts, ious = pair_gt[a:b], pair_iou[a:b]
        starts = run_start[run_bounds[r] : run_bounds[r + 1]] - a  # local run starts
        n = b - a
        available = (ious >= thr) & ~locked[:, gts]  # [K, n]
        position = np.where(available, np.arange(n), n)
        first = np.minimum.reduceat(position, starts, axis=1)  # [K, runs]; n = no GT available
        k, j = np.nonzero(first < n)
        locked[k, gts[first[k, j]]] = True
        tp[k, pair_pred[a + starts[j]]] = True
    return tp


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """VOC2011 interpolated AP of each row of precision/recall [K, n] (n >= 1). Returns [K].

    mprec = [0, prec, 0] with a running max from the right, mrec = [0, rec, 1];
    AP = Σ (mrec[i] - mrec[i-1]) · mprec[i] over the i where mrec changes (terms where it
    does not change are zero, so they are summed too).
    """
    precision, recall = np.atleast_2d(precision), np.atleast_2d(recall)
    k = precision.shape[0]
    mprec = np.concatenate([np.zeros((k, 1)), precision, np.zeros((k, 1))], axis=1)
    mrec = np.concatenate([np.zeros((k, 1)), recall, np.ones((k, 1))], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    return np.sum((mrec[:, 1:] - mrec[:, :-1]) * mprec[:, 1:], axis=1)


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
      `num_ignored_unknown_video`, `num_ignored_non_finite`.

    Ties: equal scores are visited in input order; equal tIoUs try the earlier ground truth
    first (see the module docstring).
    """
    thresholds = np.asarray(tiou_thresholds, np.float64).reshape(-1)
    if thresholds.size == 0:
        raise ValueError("at least one tIoU threshold is needed")
    video_index, class_index, gt_video, gt_class, gt_segments = _parse_ground_truth(ground_truth, subset)
    video, cls, segments, score, ignored = _parse_predictions(predictions, video_index, class_index)
    num_classes, num_videos = len(class_index), len(video_index)

    # Visiting order: class, then descending score, then input order (lexsort is stable).
    order = np.lexsort((-score, cls))
    video, cls, segments = video[order], cls[order], segments[order]
    group = cls * num_videos + video
    gt_group = gt_class * num_videos + gt_video
    gt_order = np.argsort(gt_group, kind="stable")
    tp = _match(group, segments, gt_group[gt_order], gt_segments[gt_order], thresholds)

    npos = np.bincount(gt_class, minlength=num_classes)
    class_bounds = np.searchsorted(cls, np.arange(num_classes + 1), "left")
    ap = np.zeros((num_classes, len(thresholds)))
    for c in range(num_classes):
        a, b = class_bounds[c], class_bounds[c + 1]
        if a == b:
            continue  # no prediction of this class: AP 0
        cum_tp = np.cumsum(tp[:, a:b], axis=1, dtype=np.float64)
        cum_fp = np.cumsum(~tp[:, a:b], axis=1, dtype=np.float64)
        recall = cum_tp / npos[c]
        precision = cum_tp / (cum_tp + cum_fp)
        ap[c] = interpolated_average_precision(precision, recall)

    mean_ap = ap.mean(axis=0)
    labels = sorted(class_index, key=class_index.get)
    return {
        "tiou_thresholds": [float(t) for t in thresholds],
        "mAP": [float(x) for x in mean_ap],
        "average_mAP": float(mean_ap.mean()),
        "per_class_ap": {str(label): [float(x) for x in ap[class_index[label]]] for label in labels},
        "recall": [float(x) for x in tp.sum(axis=1) / len(gt_class)],
        "num_classes": num_classes,
        "num_videos": num_videos,
        "num_ground_truth": int(len(gt_class)),
        "num_predictions": int(len(cls)),
        **ignored,
    }


# ---------------------------------------------------------------------------------------
# Files and thresholds


def load_json(path: str | os.PathLike, what: str = "file") -> dict:
    """Reads a JSON object; errors name the file (OSError or ValueError)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise OSError(f"cannot read {what} {os.fspath(path)!r}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {os.fspath(path)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {os.fspath(path)!r} does not hold a JSON object")
    return data


def evaluate_detection_files(
    ground_truth_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    tiou_thresholds: Sequence[float],
    subset: str | None = None,
) -> dict[str, Any]:
    """`evaluate_detections` on two JSON files."""
    ground_truth = load_json(ground_truth_path, "ground-truth file")
    predictions = load_json(predictions_path, "predictions file")
    return evaluate_detections(ground_truth, predictions, tiou_thresholds, subset)


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
        raise ValueError(f"bad tIoU specification {spec!r}: use START:STOP:NUM or a comma-separated list") from None
    if np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"tIoU thresholds must lie in [0, 1]; got {spec!r}")
    return tuple(float(round(v, 10)) for v in values)
