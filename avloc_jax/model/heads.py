"""Classifier heads: the open-max head (action branch + foreground-reliability branch,
background as an open set) and the closed-set softmax-with-background baseline, and
`HEADS`, the registry `model.head` chooses from.

A head is a flax module ``(x [B, T, F], *, train) -> (class_logits z [B, T, C],
reliability_logits [B, T])``; `AVLocModel` turns them into μ and the open-set posterior.
Its builder in `HEADS` takes `config.model` and C and returns it; `build_model` puts it at
the parameter path ``head``.

Shapes: B = batch, T = snippets, d = the embedding size, H = attention heads, C = action
classes. ``mask`` [B, T] is True at real snippets; padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from avloc_jax.model.masking import Array, Dtype, compute_dtype

HeadBuilder = Callable[[Any, int], nn.Module]  # (config.model, C) -> the head module


class MLP(nn.Module):
    """Dense(hidden) -> ReLU -> Dropout -> Dense(out). [B, T, D] -> [B, T, out].

    Attributes:
      hidden: the hidden width; out: the output width.
      dropout_rate: dropout after the hidden layer (training only).
      dtype: the compute dtype (parameters stay float32).
    """

    hidden: int
    out: int
    dropout_rate: float  # config.model.dropout_rate; no default (configs/default.py owns it)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.out, dtype=self.dtype)(x)


class OpenMaxHead(nn.Module):
    """Open-max classifier: an action branch and a foreground-reliability branch.

    Background has no class weights of its own (an open set):
      z_t = MLP_cls(x_t) ∈ R^C, μ_t = sigmoid(MLP_fg(x_t)),
      p_t(c) = μ_t softmax(z_t)_c, p_t(bg) = 1 - μ_t.

    Returns (class_logits z [B, T, C], reliability_logits [B, T]).

    Attributes:
      num_classes: C; hidden: the MLPs' hidden width (d).
      dropout_rate, dtype: of both MLPs.
    """

    num_classes: int
    hidden: int
    dropout_rate: float  # config.model.dropout_rate; no default (configs/default.py owns it)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> tuple[Array, Array]:
        class_logits = MLP(
            self.hidden, self.num_classes, self.dropout_rate, self.dtype, name="action"
        )(x, train=train)
        reliability_logits = MLP(self.hidden, 1, self.dropout_rate, self.dtype, name="reliability")(
            x, train=train
        )
        return class_logits, reliability_logits[..., 0]


class SoftmaxBackgroundHead(nn.Module):
    """Closed-set baseline: one softmax over C+1 classes, background being a class.

    Expressed in the open-max parametrisation so the same losses apply:
    z_t = the C action logits and μ_t = 1 - p_t(bg), i.e. the reliability logit is
    logsumexp(z_t) - z_t(bg).

    Attributes: as `OpenMaxHead`'s.
    """

    num_classes: int
    hidden: int
    dropout_rate: float  # config.model.dropout_rate; no default (configs/default.py owns it)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> tuple[Array, Array]:
        logits = MLP(
            self.hidden, self.num_classes + 1, self.dropout_rate, self.dtype, name="classifier"
        )(x, train=train)
        class_logits, background_logit = logits[..., :-1], logits[..., -1]
        reliability_logits = (
            jax.nn.logsumexp(class_logits.astype(jnp.float32), axis=-1) - background_logit
        )
        return class_logits, reliability_logits


def open_set_posterior(class_logits: Array, reliability_logits: Array) -> Array:
    """p_t over C+1 classes: [μ softmax(z), 1 - μ]. [B, T, C], [B, T] -> [B, T, C+1]."""
    reliability = jax.nn.sigmoid(reliability_logits)[..., None]
    return jnp.concatenate(
        [reliability * jax.nn.softmax(class_logits, axis=-1), 1.0 - reliability], axis=-1
    )


def _head(cls: type[OpenMaxHead] | type[SoftmaxBackgroundHead]) -> HeadBuilder:
    """The builder of a head class from `config.model` (hidden width = embed_dim)."""

    def build(config: Any, num_classes: int) -> nn.Module:
        return cls(num_classes, config.embed_dim, config.dropout_rate, compute_dtype(config))

    return build


# model.head -> its builder; the keys are the choices of `model.head`.
HEADS: dict[str, HeadBuilder] = {
    "openmax": _head(OpenMaxHead),
    "softmax_bg": _head(SoftmaxBackgroundHead),
}
