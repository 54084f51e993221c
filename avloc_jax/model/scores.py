"""Video-level class scores from the class activation sequence (CAS): top-k mean pooling.

The training losses (L_mil, L_rel in avloc_jax/losses.py) and evaluation (the video
scores of avloc_jax/evaluation/predict.py) pool the same way; both import it from here,
the layer below them (docs/method.md, "Losses": ẑ and k).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def topk_count(mask: Array, ratio: float) -> Array:
    """k = max(1, ⌊|V| / r⌋) per video. mask: [B, T] -> [B] int32."""
    return jnp.maximum(1, jnp.floor(mask.sum(axis=1) / ratio)).astype(jnp.int32)


def topk_mean(values: Array, mask: Array, k: Array, *, largest: bool = True) -> Array:
    """Mean of the k largest (or smallest) valid values along time, per video.

    values: [B, T] or [B, T, C]; mask: [B, T]; k: [B] -> [B] or [B, C].
    k varies per video, so this sorts rather than using lax.top_k.
    """
    expand = (lambda x: x[..., None]) if values.ndim == 3 else (lambda x: x)
    fill = -jnp.inf if largest else jnp.inf
    masked = jnp.where(expand(mask), values, fill)
    ordered = jnp.sort(masked, axis=1)
    if largest:
        ordered = jnp.flip(ordered, axis=1)
    take = jnp.arange(values.shape[1])[None, :] < k[:, None]  # [B, T]
    ordered = jnp.where(expand(take), ordered, 0.0)
    return ordered.sum(axis=1) / expand(k).astype(values.dtype)


def video_logits(class_logits: Array, mask: Array, topk_ratio: float) -> Array:
    """ẑ: top-k mean pooling of the CAS over time. [B, T, C] -> [B, C]."""
    return topk_mean(class_logits, mask, topk_count(mask, topk_ratio))


def video_scores(class_logits: Array, mask: Array, topk_ratio: float) -> Array:
    """Video-level class scores softmax(ẑ). [B, T, C] -> [B, C]."""
    return jax.nn.softmax(video_logits(class_logits, mask, topk_ratio), axis=-1)
