"""Untrimmed-video localization: per-snippet class activations -> scored segments.

The standard WTAL post-processing (BaS-Net, UM, CoLA, ... ; METHOD_NOTES §4), per video
(the `config.localization` keys in backticks; their defaults are in configs/default.py):

1. Keep the classes whose video score is >= `class_threshold`; if none passes, the top one.
2. Optionally smooth the CAS over time (`cas_smoothing`, a centred moving average; 0 = off).
3. Min-max normalise the CAS of each kept class over time. A constant CAS (T = 1
   included) has no temporal contrast; it normalises to 1 everywhere, so the whole video
   becomes one proposal scored by its video score.
4. Upsample by `upsample` (u) with linear interpolation between snippet centres (values
   beyond the first/last centre are held constant).
5. For each of `thresholds`, every maximal run of consecutive positions with normalised
   CAS >= threshold is a proposal [s, e) (e exclusive) on the upsampled grid. Runs shorter
   than `min_length_snippets` snippets are dropped.
6. Score = outer-inner contrast + `video_score_weight` (γ) · video score. The contrast is
   the mean CAS inside [s, e) minus the mean over the outer margins of
   m = ceil(`outer_margin` · (e − s)) positions on each side, clipped to the video (an empty
   outer region counts as 0). `contrast_on` picks the CAS used: "normalized" (step 3,
   default) or "raw" (the unnormalised p_t(c)).
7. Pool the proposals of all thresholds (exact duplicates merged), run NMS per class
   (`nms`: "soft" Gaussian with `soft_nms_sigma`, "hard" at `nms_iou`, or "none"), and
   keep the `top_n` best of the video (0 keeps all).
8. Times: position i of the upsampled grid covers [i, i+1) · duration / (T·u) seconds, so a
   proposal [s, e) is [s·duration/(T·u), e·duration/(T·u)] — the `t = index · duration / T`
   mapping on the finer grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from avloc_jax.data import activitynet_json

Detection = tuple[int, float, float, float]  # (class index, score, start s, end s)

NMS_KINDS = ("soft", "hard", "none")
CONTRAST_KINDS = ("normalized", "raw")


# ---------------------------------------------------------------------------------------
# Steps (each vectorised over the kept classes K)


def smooth(cas: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time of cas [K, T], over the neighbours that exist.

    The half-width is window // 2, so an even window acts like the next odd one.
    """
    half = int(window) // 2
    if half <= 0:
        return cas
    length = cas.shape[1]
    cums = np.concatenate([np.zeros((cas.shape[0], 1)), np.cumsum(cas, axis=1)], axis=1)
    lo = np.clip(np.arange(length) - half, 0, length)
    hi = np.clip(np.arange(length) + half + 1, 0, length)
    return (cums[:, hi] - cums[:, lo]) / (hi - lo)


def minmax_normalize(cas: np.ndarray) -> np.ndarray:
    """Per-row min-max normalisation of cas [K, T]; a constant row becomes all ones."""
    low = cas.min(axis=1, keepdims=True)
    span = cas.max(axis=1, keepdims=True) - low
    constant = span <= 1e-12
    return np.where(constant, 1.0, (cas - low) / np.where(constant, 1.0, span))


def upsample(cas: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation of cas [K, T] to [K, T·factor] between snippet centres.

    Fine position i has centre (i + 0.5)/factor in snippet units, i.e. snippet coordinate
    x = (i + 0.5)/factor − 0.5; x outside [0, T−1] is clamped (edge values held).
    """
    factor = int(factor)
    num_rows, length = cas.shape
    if factor <= 1:
        return cas
    x = np.clip((np.arange(length * factor) + 0.5) / factor - 0.5, 0.0, length - 1)
    if length == 1:
        return np.repeat(cas, factor, axis=1)
    lo = np.minimum(np.floor(x).astype(np.int64), length - 2)
    w = x - lo
    return cas[:, lo] * (1.0 - w) + cas[:, lo + 1] * w


def threshold_runs(
    cas: np.ndarray, thresholds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of cas [K, L] >= each threshold, all thresholds at once.

    Returns (row k [N], start [N], end [N]) with end exclusive; runs of different
    thresholds are simply concatenated (threshold-major order).
    """
    thr = np.asarray(thresholds, np.float64).reshape(-1, 1, 1)
    above = cas[None] >= thr  # [num_thr, K, L]
    padded = np.zeros(above.shape[:2] + (above.shape[2] + 2,), np.int8)
    padded[:, :, 1:-1] = above
    change = np.diff(padded, axis=2)  # +1 where a run starts at i, -1 where one ended before i
    _, rows, starts = np.nonzero(change == 1)
    _, _, ends = np.nonzero(change == -1)  # same (threshold, row) order, one end per start
    return rows, starts, ends


def outer_inner_contrast(
    cas: np.ndarray, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, margin: float
) -> np.ndarray:
    """Mean of cas [K, L] inside [s, e) minus the mean over the clipped outer margins. [N]."""
    length = cas.shape[1]
    cums = np.concatenate([np.zeros((cas.shape[0], 1)), np.cumsum(cas, axis=1)], axis=1)
    size = ends - starts
    inner = (cums[rows, ends] - cums[rows, starts]) / size
    # The small tolerance keeps margin·size = 3.0000000000000004 from rounding up to 4.
    m = np.ceil(margin * size - 1e-9).astype(np.int64) if margin > 0 else np.zeros_like(size)
    left, right = np.maximum(starts - m, 0), np.minimum(ends + m, length)
    outer_sum = (cums[rows, starts] - cums[rows, left]) + (cums[rows, right] - cums[rows, ends])
    outer_count = (starts - left) + (right - ends)
    outer = np.where(outer_count > 0, outer_sum / np.maximum(outer_count, 1), 0.0)
    return inner - outer


def _pairwise_iou(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """[n, n] tIoU of segments [starts, ends) with positive lengths."""
    inter = np.clip(
        np.minimum(ends[:, None], ends[None]) - np.maximum(starts[:, None], starts[None]), 0, None
    )
    union = (ends - starts)[:, None] + (ends - starts)[None] - inter
    return inter / np.maximum(union, 1e-12)


def nms(
    starts: np.ndarray,
    ends: np.ndarray,
    scores: np.ndarray,
    kind: str,
    *,
    iou: float,
    sigma: float,
    limit: int,
) -> tuple[np.ndarray, np.ndarray]:
    """NMS over one class's proposals. Returns (kept indices, their final scores), best first.

    "hard": greedy, drops proposals with tIoU > iou with a kept one. "soft": Gaussian
    soft-NMS; after each pick every remaining score s moves down by (1 − w)|s| with
    w = exp(−tIoU² / sigma) (i.e. s·w for s >= 0; a negative score is pushed further down
    rather than towards 0). Scores only decrease, so picks come out in non-increasing
    final score and stopping after `limit` picks (0 = all) changes nothing above them.
    Ties are broken by index (the earlier proposal first).
    """
    n = len(scores)
    limit = n if limit <= 0 else min(limit, n)
    if kind == "none":
        order = np.argsort(-scores, kind="stable")[:limit]
        return order, scores[order]
    overlap = _pairwise_iou(starts, ends)
    if kind == "hard":
        order = np.argsort(-scores, kind="stable")
        alive = np.ones(n, bool)
        picks: list[int] = []
        for i in order:
            if not alive[i]:
                continue
            picks.append(i)
            if len(picks) == limit:
                break
            alive &= overlap[i] <= iou
        kept_idx = np.asarray(picks, np.int64)
        return kept_idx, scores[kept_idx]
    if kind != "soft":
        raise ValueError(f"unknown nms kind {kind!r}; expected one of {NMS_KINDS}")
    current = scores.astype(np.float64).copy()
    remaining = np.ones(n, bool)
    kept, kept_scores = [], []
    for _ in range(limit):
        i = int(np.argmax(np.where(remaining, current, -np.inf)))  # first index on ties
        kept.append(i)
        kept_scores.append(current[i])
        remaining[i] = False
        decay = 1.0 - np.exp(-(overlap[i] ** 2) / sigma)
        current = np.where(remaining, current - decay * np.abs(current), current)
    return np.asarray(kept, np.int64), np.asarray(kept_scores)


# ---------------------------------------------------------------------------------------
# Entry points


def localize(
    cas: np.ndarray, video_scores: np.ndarray, duration_seconds: float, config: Any
) -> list[Detection]:
    """Scored segments of ONE video.

    Args:
      cas: [T, C] per-snippet activations of the C action classes (p_t(c), background
        column excluded), valid snippets only.
      video_scores: [C] video-level class scores.
      duration_seconds: the video's length; snippet t covers [t, t+1)·duration/T.
      config: a `config.localization` (configs/default.py), every key present.

    Returns:
      [(class_index, score, start_s, end_s)] sorted by descending score (ties: class
      index, then proposal order), at most `top_n`. Empty when T = 0.
    """
    cas = np.asarray(cas, np.float64)
    video_scores = np.asarray(video_scores, np.float64).reshape(-1)
    if cas.ndim != 2 or cas.shape[1] != video_scores.shape[0]:
        raise ValueError(
            f"expected cas [T, C] and video_scores [C]; got {cas.shape} and {video_scores.shape}"
        )
    if not (math.isfinite(duration_seconds) and duration_seconds >= 0):
        raise ValueError(
            f"duration must be a finite non-negative number of seconds; got {duration_seconds}"
        )
    if config.nms not in NMS_KINDS or config.contrast_on not in CONTRAST_KINDS:
        raise ValueError(
            f"config: nms must be one of {NMS_KINDS} and contrast_on one of {CONTRAST_KINDS}"
        )
    num_snippets = cas.shape[0]
    if num_snippets == 0 or video_scores.size == 0:
        return []

    classes = np.flatnonzero(video_scores >= config.class_threshold)
    if classes.size == 0:
        classes = np.array([int(np.argmax(video_scores))])
    raw = smooth(cas[:, classes].T, config.cas_smoothing)  # [K, T]
    factor = max(1, int(config.upsample))
    normalized = upsample(minmax_normalize(raw), factor)  # [K, L]
    rows, starts, ends = threshold_runs(normalized, config.thresholds)
    keep = (ends - starts) >= config.min_length_snippets * factor
    rows, starts, ends = rows[keep], starts[keep], ends[keep]
    if rows.size == 0:
        return []
    # The same run found at several thresholds is one proposal.
    unique = np.unique(np.stack([rows, starts, ends], axis=1), axis=0)
    rows, starts, ends = unique[:, 0], unique[:, 1], unique[:, 2]
    contrast_cas = normalized if config.contrast_on == "normalized" else upsample(raw, factor)
    scores = outer_inner_contrast(contrast_cas, rows, starts, ends, config.outer_margin)
    scores = scores + config.video_score_weight * video_scores[classes[rows]]

    found_class, found_score, found_start, found_end = [], [], [], []
    for k in range(len(classes)):
        mine = np.flatnonzero(rows == k)
        if mine.size == 0:
            continue
        kept, kept_scores = nms(
            starts[mine], ends[mine], scores[mine], config.nms,
            iou=config.nms_iou, sigma=config.soft_nms_sigma, limit=int(config.top_n),
        )  # fmt: skip
        found_class.append(np.full(len(kept), classes[k]))
        found_score.append(kept_scores)
        found_start.append(starts[mine][kept])
        found_end.append(ends[mine][kept])
    cls, score = np.concatenate(found_class), np.concatenate(found_score)
    start, end = np.concatenate(found_start), np.concatenate(found_end)
    order = np.argsort(-score, kind="stable")
    if config.top_n > 0:
        order = order[: int(config.top_n)]
    seconds_per_position = duration_seconds / (num_snippets * factor)
    return [
        (
            int(cls[i]),
            float(score[i]),
            float(start[i] * seconds_per_position),
            float(end[i] * seconds_per_position),
        )
        for i in order
    ]


def localize_videos(
    videos: Iterable[tuple[str, np.ndarray, np.ndarray, float]], config: Any
) -> dict[str, list[Detection]]:
    """`localize` over (video_id, cas [T, C], video_scores [C], duration) tuples."""
    return {
        video_id: localize(cas, scores, duration, config)
        for video_id, cas, scores, duration in videos
    }


def detections_to_json(
    per_video: Mapping[str, Sequence[Detection]],
    class_names: Sequence[str],
    *,
    version: str = activitynet_json.DEFAULT_VERSION,
    external_data: Mapping[str, Any] | None = None,
) -> dict:
    """The official ActivityNet prediction layout (`activitynet_json.predictions_payload`)
    of {video id: [(class index, score, start, end)]}:
    `{"version", "results": {vid: [{"label", "score", "segment": [s, e]}]}, "external_data"}`.
    """
    return activitynet_json.predictions_payload(
        {
            video_id: [(class_names[int(c)], score, s, e) for c, score, s, e in detections]
            for video_id, detections in per_video.items()
        },
        version=version,
        external_data=external_data,
    )
