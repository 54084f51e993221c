"""The core of the official ActivityNet detection mAP on arrays: tIoU, the visiting
order, greedy matching and interpolated AP. `detection_eval` parses the JSON, calls these
and reports; its docstring states the algorithm and what is guaranteed about ties.

Speed: every (prediction, ground truth) pair of the same video and class gets its tIoU in
one vectorised pass. The greedy locking is inherently sequential within one (video, class)
group, but groups are independent, so it runs in "rounds": round r handles the r-th
prediction (in visiting order) of every group at once, for all thresholds at once. The
number of rounds is the largest number of overlapping predictions in one group, not the
number of predictions. Only predictions with tied candidate tIoUs cost a Python iteration
each (one argsort of their tIoU array).
"""

from __future__ import annotations

import numpy as np


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


def official_visiting_order(
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


def match(
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
