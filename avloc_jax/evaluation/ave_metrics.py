"""AVE-style per-snippet labelling and the AVE accuracy protocol (NumPy, batched).

Every snippet gets one of C event classes or background; background is index C, the
layout of AVE's `labels.h5` (29 columns, the last one background). The protocol's figure
is the accuracy over every valid snippet of the split, background included: on the real
AVE test split that is 402 videos x 10 = 4020 snippets.

Ties and thresholds (METHOD_NOTES §4 leaves the tie rule open): every argmax takes the
first (lowest) class index among equal maxima, as np.argmax does; the gate μ_t >= θ is
decided on the exact values (in float64, to which float32/bfloat16 μ converts exactly), so
μ_t = θ is foreground and a float32 μ just below θ is background.
"""

from __future__ import annotations

import numpy as np


def gated_snippet_labels(
    video_scores: np.ndarray, reliability: np.ndarray, theta: float = 0.5
) -> np.ndarray:
    """The method's labelling: the video's top class where μ_t >= θ, background elsewhere.

    Args:
      video_scores: [N, C] video-level class scores (softmax of the pooled CAS).
      reliability: [N, T] foreground reliability μ_t in (0, 1).
      theta: gate on μ_t; a snippet is foreground iff μ_t >= theta (exact comparison).

    Returns:
      int64 [N, T]: c* = argmax_c video_scores[n] on gated snippets, C (background) elsewhere.
    """
    video_scores = np.asarray(video_scores)
    reliability = np.asarray(reliability)
    if (
        video_scores.ndim != 2
        or reliability.ndim != 2
        or video_scores.shape[0] != reliability.shape[0]
    ):
        raise ValueError(
            "expected video_scores [N, C] and reliability [N, T]; "
            f"got {video_scores.shape}, {reliability.shape}"
        )
    num_classes = video_scores.shape[1]
    top_class = np.argmax(video_scores, axis=1)  # [N]; first index on ties, like any argmax
    # Under NumPy 2's promotion rules `float32_array >= python_float` rounds θ to float32
    # (0.7 -> 0.69999999), which would gate in a μ of float32(0.7) < 0.7. Compare exactly.
    gate = np.asarray(reliability, np.float64) >= np.float64(theta)
    return np.where(gate, top_class[:, None], num_classes).astype(np.int64)


def ungated_snippet_labels(posterior: np.ndarray) -> np.ndarray:
    """argmax over the C+1 open-set posterior p_t (background last).

    Args:
      posterior: [N, T, C+1] per-snippet posterior; index C is background.

    Returns:
      int64 [N, T] labels in [0, C]; among equal maxima the lowest index.
    """
    posterior = np.asarray(posterior)
    if posterior.ndim != 3:
        raise ValueError(f"expected posterior [N, T, C+1]; got shape {posterior.shape}")
    return np.argmax(posterior, axis=-1).astype(np.int64)


def segment_accuracy(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of valid snippets whose label equals the target, background included.

    Args:
      pred: [N, T] predicted labels (C = background).
      target: [N, T] true labels, same convention.
      mask: optional [N, T] bool, True on valid (non-padded) snippets; default all valid.

    Returns:
      accuracy in [0, 1]; NaN when there is no valid snippet.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    valid = np.ones(pred.shape, bool) if mask is None else np.asarray(mask, bool)
    if valid.shape != pred.shape:
        raise ValueError(f"mask {valid.shape} does not match pred {pred.shape}")
    count = int(valid.sum())
    if count == 0:
        return float("nan")
    return float(np.sum((pred == target) & valid) / count)
