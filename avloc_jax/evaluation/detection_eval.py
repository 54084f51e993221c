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

Speed: every (prediction, ground truth) pair of the same video and class gets its tIoU in
one vectorised pass. The greedy locking is inherently sequential within one (video, class)
group, but groups are independent, so it runs in "rounds": round r handles the r-th
prediction (in visiting order) of every group at once, for all thresholds at once. The
number of rounds is the largest number of overlapping predictions in one group, not the
number of predictions. Only predictions with tied candidate tIoUs cost a Python iteration
each (one argsort of their tIoU array).
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


class DetectionEvalWarning(UserWarning):
    """Predictions were ignored (unknown label or video, non-finite values) or look wrong."""


# A malformed ground-truth or prediction entry (the ActivityNet JSON module's error).
DetectionFormatError = activitynet_json.FormatError


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


# ---------------------------------------------------------------------------------------
# Core


def segment_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise continuous-time tIoU of aligned segments a [..., 2] and b [..., 2].

    inter = max(0, min(ends) - max(starts)), union = len_b + len_a - inter, in the official
    code's operation order, so the values are bitwise those of its `segment_iou` (the
    additions commute exactly, so the argument order does not matter either). A zero
    union (coincident zero-length segments) gives 0 where the official code gets NaN.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    union = (b[..., 1] - b[..., 0]) + (a[..., 1] - a[..., 0]) - inter
    # Only union == 0 needs care: union < 0 implies inter == 0, so -0.0, which compares
    # like 0.0 in every test below and in argsort.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union != 0, inter / np.where(union != 0, union, 1.0), 0.0)


def _official_visiting_order(
    cls: np.ndarray, sort_key: np.ndarray, keep: np.ndarray, num_classes: int
) -> np.ndarray:
    """Indices of the scored predictions: class by class, each in the official order.

    Per class the official code sorts the score column of that class's predictions (file
    order) with `argsort()[::-1]`; the same call runs here on the same values. Predictions
    that are ignored are still in the sorted array (the official code has them there too;
    an unstable sort's result depends on every element) and are dropped afterwards.
    """
    by_class = np.argsort(cls, kind="stable")  # file order within each class
    bounds = np.searchsorted(cls[by_class], np.arange(num_classes + 1), "left")
    parts = [np.zeros(0, np.int64)]
    for c in range(num_classes):
        members = by_class[bounds[c] : bounds[c + 1]]
        parts.append(members[np.argsort(sort_key[members])[::-1]])
    order = np.concatenate(parts)
    return order[keep[order]]


def _order_tie_runs(
    order: np.ndarray,
    pair_pred: np.ndarray,
    pair_iou: np.ndarray,
    kept: np.ndarray,
    full_iou: np.ndarray,
    first_pair: np.ndarray,
    count: np.ndarray,
) -> None:
    """Puts the pairs of each tie run of `order` (in place) in the official order.

    A tie run is a maximal block of adjacent pairs of `order` with the same prediction and
    the same tIoU. Within it the official code tries the ground truths in the order of
    `np.argsort(tiou_arr)[::-1]`, tiou_arr being all the prediction's tIoUs, ground truths in
    file order; that call is made here for each prediction with a tie run, and only for
    those (an unstable sort's order of tied values depends on every element, so the whole
    array is sorted, not just the tied values).

    Args:
      order: [n] pair indices (into pair_pred / pair_iou), by prediction and descending tIoU.
      pair_pred, pair_iou: [n] prediction and tIoU of each candidate pair.
      kept: [n] index of each candidate pair among all pairs (full_iou).
      full_iou: [all pairs] tIoUs; prediction p's are full_iou[first_pair[p]:][:count[p]].
      first_pair, count: [P] where each prediction's pairs start, and how many it has.
    """
    p_sorted, iou_sorted = pair_pred[order], pair_iou[order]
    same = (p_sorted[1:] == p_sorted[:-1]) & (iou_sorted[1:] == iou_sorted[:-1])
    if not same.any():
        return
    official_rank = np.zeros(len(full_iou), np.int64)  # position in the official GT order
    for p in np.unique(p_sorted[1:][same]).tolist():
        start, n = first_pair[p], count[p]
        tried = np.argsort(full_iou[start : start + n])[::-1]  # the official call
        official_rank[start + tried] = np.arange(n)
    in_run = np.zeros(len(order), bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    run_id = np.cumsum(np.r_[True, ~same])  # run number of each position of `order`
    positions = np.flatnonzero(in_run)  # ascending; every run is a contiguous block
    members = order[positions]
    # Sorting the tied positions by (run, official rank) permutes each block within itself.
    order[positions] = members[np.lexsort((official_rank[kept[members]], run_id[positions]))]


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
        visiting order (class, then the official score order).
      pred_segments: [P, 2].
      gt_group_sorted: int64 [G] keys of the ground truths, sorted ascending (stable, so
        within a group the ground-truth file order is kept, as in the official code).
      gt_segments_sorted: [G, 2] in the same order.
      thresholds: [K] tIoU thresholds.
    """
    num_thr, num_pred, num_gt = len(thresholds), len(group), len(gt_group_sorted)
    tp = np.zeros((num_thr, num_pred), bool)
    lo = np.searchsorted(gt_group_sorted, group, "left")
    count = np.searchsorted(gt_group_sorted, group, "right") - lo  # GTs in the prediction's group
    if count.sum() == 0:
        return tp
    # All (prediction, same-group GT) pairs, flattened; the pairs of prediction p are
    # first_pair[p] ... first_pair[p] + count[p] - 1, its GTs in file order, so that slice
    # of pair_iou holds exactly the official code's `tiou_arr` for p.
    pair_pred = np.repeat(np.arange(num_pred), count)
    first_pair = np.cumsum(count) - count
    pair_local = np.arange(len(pair_pred)) - np.repeat(first_pair, count)
    pair_gt = np.repeat(lo, count) + pair_local
    full_iou = segment_iou(pred_segments[pair_pred], gt_segments_sorted[pair_gt])
    # A pair below every threshold can never match; dropping it changes nothing.
    keep = full_iou >= thresholds.min()
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        return tp
    pair_pred, pair_gt, pair_iou = pair_pred[kept], pair_gt[kept], full_iou[kept]

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
    # Pairs ordered by (round, prediction, descending tIoU); equal tIoUs of one prediction
    # are then adjacent ("tie runs") and get the official order below.
    order = np.lexsort((-pair_iou, pair_pred, pred_round[pair_pred]))
    _order_tie_runs(order, pair_pred, pair_iou, kept, full_iou, first_pair, count)
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
        # In descending-tIoU order, "tIoU < thr ends the search" and "first unlocked with
        # tIoU >= thr" pick the same GT: the ones >= thr form a prefix of the run.
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
    AP = Σ (mrec[i] - mrec[i-1]) · mprec[i] over the i where mrec changes. Only those terms
    are summed, one row at a time, as in the official code: summing the zero terms too
    would regroup numpy's pairwise summation and change the last bits.
    """
    precision, recall = np.atleast_2d(precision), np.atleast_2d(recall)
    k = precision.shape[0]
    mprec = np.concatenate([np.zeros((k, 1)), precision, np.zeros((k, 1))], axis=1)
    mrec = np.concatenate([np.zeros((k, 1)), recall, np.ones((k, 1))], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    changed = mrec[:, 1:] != mrec[:, :-1]
    # The official terms, row after row in one flat array; then np.sum per row, on the
    # same values in the same order as the official np.sum over `idx`.
    terms = ((mrec[:, 1:] - mrec[:, :-1]) * mprec[:, 1:])[changed]
    ends = np.cumsum(changed.sum(axis=1)).tolist()
    ap = np.empty(k)
    for row, (a, b) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
        ap[row] = terms[a:b].sum()
    return ap


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

    order = _official_visiting_order(parsed.cls, parsed.sort_key, parsed.keep, num_classes)
    video, cls, segments = parsed.video[order], parsed.cls[order], parsed.segments[order]
    group = cls * num_videos + video
    gt_group = gt_class * num_videos + gt_video
    gt_order = np.argsort(gt_group, kind="stable")
    tp = _match(group, segments, gt_group[gt_order], gt_segments[gt_order], thresholds)

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
