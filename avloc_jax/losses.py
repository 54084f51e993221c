"""Weakly-supervised training losses (docs/method.md, "Losses").

All functions take the model's outputs for a batch (``class_logits`` z [B, T, C],
``reliability_logits`` [B, T], ``posterior`` [B, T, C+1]), the padding mask [B, T] and the
video-level labels [B, C] (multi-hot; an all-zero row is a background-only video). Only
valid snippets count. ``example_weight`` [B] lets padded examples (weight 0) drop out.

Top-k pooling of the CAS (`topk_mean`, `video_logits`) is avloc_jax/model/scores.py's,
shared with evaluation. Every weight, ratio and rule comes from the caller (`total_loss`
reads them from `config.loss`): no function here has a default that could differ from
the config's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from avloc_jax.model.scores import topk_count, topk_mean, video_logits

Array = jax.Array
_EPS = 1e-6


def normalized_labels(labels: Array) -> Array:
    """ȳ = y / |y| (zero rows stay zero). [B, C] -> [B, C]."""
    return labels / jnp.maximum(labels.sum(axis=-1, keepdims=True), 1.0)


def _weighted_mean(per_video: Array, weight: Array) -> Array:
    return (per_video * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def _labelled_cross_entropy(log_probs: Array, labels: Array, example_weight: Array) -> Array:
    """-Σ_c ȳ_c log_probs_c per video [B], averaged over the videos that have labels
    (background-only videos carry no class target)."""
    per_video = -(normalized_labels(labels) * log_probs).sum(axis=-1)
    has_action = (labels.sum(axis=-1) > 0).astype(per_video.dtype)
    return _weighted_mean(per_video, example_weight * has_action)


def mil_loss(
    class_logits: Array, mask: Array, labels: Array, example_weight: Array, topk_ratio: float
) -> Array:
    """L_mil = -Σ_c ȳ_c log softmax(ẑ)_c, averaged over videos that have labels."""
    log_probs = jax.nn.log_softmax(video_logits(class_logits, mask, topk_ratio), axis=-1)
    return _labelled_cross_entropy(log_probs, labels, example_weight)


def foreground_loss(
    class_logits: Array,
    reliability_logits: Array,
    mask: Array,
    labels: Array,
    example_weight: Array,
) -> Array:
    """L_fg: q_c = Σ_t μ_t softmax(z_t)_c / (Σ_t μ_t + ε); L_fg = -Σ_c ȳ_c log q_c."""
    reliability = jax.nn.sigmoid(reliability_logits) * mask
    class_probs = jax.nn.softmax(class_logits, axis=-1)
    pooled = (reliability[..., None] * class_probs).sum(axis=1) / (
        reliability.sum(axis=1, keepdims=True) + _EPS
    )
    return _labelled_cross_entropy(jnp.log(pooled + _EPS), labels, example_weight)


def reliability_loss(
    reliability_logits: Array,
    mask: Array,
    labels: Array,
    example_weight: Array,
    topk_ratio: float,
    background_weight: float,
) -> Array:
    """L_rel, reliability MIL with background as an open set.

    Videos with actions: -log(top-k mean μ) - w_bg log(1 - bottom-k mean μ). w_bg = 1 is
    the two-sided loss of METHOD_NOTES; w_bg = 0 drops the bottom-k term (for clips that
    may be action from start to end, as most AVE clips are).
    Background-only videos: -log(1 - top-k mean μ).
    """
    reliability = jax.nn.sigmoid(reliability_logits)
    k = topk_count(mask, topk_ratio)
    top = jnp.clip(topk_mean(reliability, mask, k, largest=True), _EPS, 1.0 - _EPS)
    bottom = jnp.clip(topk_mean(reliability, mask, k, largest=False), _EPS, 1.0 - _EPS)
    has_action = labels.sum(axis=-1) > 0
    labelled_term = -jnp.log(top) - background_weight * jnp.log1p(-bottom)
    per_video = jnp.where(has_action, labelled_term, -jnp.log1p(-top))
    return _weighted_mean(per_video, example_weight)


def smooth_over_time(values: Array, mask: Array, window: int) -> Array:
    """Mean over valid neighbours |δ| ≤ window. values: [B, T, K], mask: [B, T]."""
    if window <= 0:
        return values
    valid = mask[..., None].astype(values.dtype)

    def box_sum(x: Array) -> Array:  # sum over the window, zero beyond the ends
        return jax.lax.reduce_window(
            x,
            0.0,
            jax.lax.add,
            (1, 2 * window + 1, 1),
            (1, 1, 1),
            ((0, 0), (window, window), (0, 0)),
        )

    return box_sum(values * valid) / jnp.maximum(box_sum(valid), 1.0)


PSEUDO_LABEL_RULES = ("foreground_mass", "class_argmax")


def consistency_pseudo_labels(
    posterior: Array, mask: Array, labels: Array, window: int, threshold: float
) -> tuple[Array, Array]:
    """The `class_argmax` pseudo-label rule (no gradient flows through it).

    p̄ = the posterior smoothed over time (|δ| ≤ window, valid neighbours only);
    ŷ_t = argmax of p̄_t over the video's labelled classes plus background; confident when
    p̄_t(ŷ_t) ≥ τ. When the class softmax splits between confusable classes, every
    labelled class can lose to background, the pseudo-labels turn to background and μ
    collapses (docs/method.md); `foreground_mass_pseudo_labels` avoids that.
    Returns (pseudo_labels [B, T] in 0..C, C = background; confident [B, T] bool).
    """
    smoothed = jax.lax.stop_gradient(smooth_over_time(posterior, mask, window))
    allowed = jnp.concatenate(
        [labels > 0, jnp.ones_like(labels[:, :1], dtype=bool)], axis=-1
    )  # [B, C+1]
    candidates = jnp.where(allowed[:, None, :], smoothed, -1.0)
    pseudo = jnp.argmax(candidates, axis=-1)
    confident = (jnp.max(candidates, axis=-1) >= threshold) & mask
    return pseudo, confident


def foreground_mass_pseudo_labels(
    posterior: Array, mask: Array, labels: Array, window: int, threshold: float
) -> tuple[Array, Array]:
    """The `foreground_mass` pseudo-label rule (no gradient flows through it).

    Snippet t is foreground when its smoothed foreground mass 1 - p̄_t(bg) = μ̄_t exceeds
    p̄_t(bg), and then takes the best labelled class; background-only videos are
    background everywhere. Confident when max(p̄_t(bg), 1 - p̄_t(bg)) ≥ τ.
    Returns (pseudo_labels [B, T] in 0..C, C = background; confident [B, T] bool).
    """
    smoothed = jax.lax.stop_gradient(smooth_over_time(posterior, mask, window))
    labelled = labels > 0  # [B, C]
    background = smoothed[..., -1]
    foreground_mass = 1.0 - background
    best_labelled = jnp.argmax(jnp.where(labelled[:, None, :], smoothed[..., :-1], -1.0), axis=-1)
    is_background = (background >= foreground_mass) | ~labelled.any(axis=-1)[:, None]
    pseudo = jnp.where(is_background, labels.shape[-1], best_labelled)
    confident = (jnp.maximum(background, foreground_mass) >= threshold) & mask
    return pseudo, confident


def consistency_losses(
    posterior: Array,
    reliability_logits: Array,
    mask: Array,
    labels: Array,
    example_weight: Array,
    window: int,
    threshold: float,
    rule: str,
) -> tuple[Array, Array]:
    """(L_cc, L_fc): class continuity CE(p_t, ŷ_t) and reliability consistency
    BCE(μ_t, 1[ŷ_t ≠ bg]), both averaged over the confident valid snippets."""
    num_classes = labels.shape[-1]
    if rule not in PSEUDO_LABEL_RULES:
        raise ValueError(
            f"loss.pseudo_label_rule must be one of {PSEUDO_LABEL_RULES}, got {rule!r}"
        )
    rule_fn = (
        foreground_mass_pseudo_labels if rule == "foreground_mass" else consistency_pseudo_labels
    )
    pseudo, confident = rule_fn(posterior, mask, labels, window, threshold)
    weight = (confident & (example_weight[:, None] > 0)).astype(posterior.dtype)
    count = jnp.maximum(weight.sum(), 1.0)
    picked = jnp.take_along_axis(posterior, pseudo[..., None], axis=-1)[..., 0]
    class_continuity = -(jnp.log(picked + _EPS) * weight).sum() / count
    is_foreground = (pseudo != num_classes).astype(reliability_logits.dtype)
    bce = -(
        is_foreground * jax.nn.log_sigmoid(reliability_logits)
        + (1 - is_foreground) * jax.nn.log_sigmoid(-reliability_logits)
    )
    reliability_consistency = (bce * weight).sum() / count
    return class_continuity, reliability_consistency


def total_loss(
    outputs: Mapping[str, Array],
    mask: Array,
    labels: Array,
    example_weight: Array,
    loss_config: Any,
    step: Array | int,
) -> tuple[Array, dict[str, Array]]:
    """L = w_mil L_mil + w_fg L_fg + w_rel L_rel + w_c (L_cc + L_fc).

    A term whose weight is 0 is not computed. The consistency weight is 0 for
    ``step < loss_config.consistency_warmup_steps``. Returns (loss, {term: value}).
    """
    mask = mask.astype(bool)
    class_logits, reliability_logits = outputs["class_logits"], outputs["reliability_logits"]
    terms: dict[str, Array] = {}
    loss = jnp.zeros((), jnp.float32)
    if loss_config.mil_weight:
        terms["mil"] = mil_loss(class_logits, mask, labels, example_weight, loss_config.topk_ratio)
        loss += loss_config.mil_weight * terms["mil"]
    if loss_config.fg_weight:
        terms["fg"] = foreground_loss(
            class_logits, reliability_logits, mask, labels, example_weight
        )
        loss += loss_config.fg_weight * terms["fg"]
    if loss_config.rel_weight:
        terms["rel"] = reliability_loss(
            reliability_logits,
            mask,
            labels,
            example_weight,
            loss_config.topk_ratio,
            loss_config.rel_background_weight,
        )
        loss += loss_config.rel_weight * terms["rel"]
    if loss_config.class_consistency_weight or loss_config.reliability_consistency_weight:
        terms["class_consistency"], terms["reliability_consistency"] = consistency_losses(
            outputs["posterior"],
            reliability_logits,
            mask,
            labels,
            example_weight,
            loss_config.consistency_window,
            loss_config.consistency_threshold,
            loss_config.pseudo_label_rule,
        )
        warm = (jnp.asarray(step) >= loss_config.consistency_warmup_steps).astype(jnp.float32)
        terms["consistency_on"] = warm
        loss += warm * (
            loss_config.class_consistency_weight * terms["class_consistency"]
            + loss_config.reliability_consistency_weight * terms["reliability_consistency"]
        )
    terms["total"] = loss
    return loss, terms
