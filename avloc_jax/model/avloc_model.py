"""The whole model (embeddings -> fusion -> head) and `build_model`.

Shapes: B = batch, T = snippets, d = the embedding size, H = attention heads, C = action
classes. ``mask`` [B, T] is True at real snippets; padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.
Dv / Da = visual / audio feature sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from avloc_jax.model.cross_attention import MultiStageCrossAttention
from avloc_jax.model.embedding import ModalityEmbedding
from avloc_jax.model.heads import HEADS, OpenMaxHead, SoftmaxBackgroundHead, open_set_posterior
from avloc_jax.model.masking import Array, Dtype, zero_padded

FUSIONS = ("cross_attention", "concat", "visual", "audio")
HEAD_NORMS = ("none", "layernorm", "video_rms")


class VideoRMSNorm(nn.Module):
    """Divides each video's features by their root mean square over its valid snippets and
    all channels, then applies a learned per-channel scale (initialised to 1).

    Unlike a per-snippet LayerNorm it keeps the relative amplitude of the snippets of a
    video (an action-vs-context cue can be an amplitude), and removes only the overall
    scale of the stream, e.g. the 2^(S-1) of the dense skip sum."""

    dtype: Dtype
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> Array:
        """x: [B, T, F], mask: [B, T] -> [B, T, F]."""
        x32 = zero_padded(x.astype(jnp.float32), mask)
        count = jnp.maximum(mask.sum(axis=1), 1)[:, None, None] * x.shape[-1]
        mean_square = jnp.sum(x32 * x32, axis=(1, 2), keepdims=True) / count
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        return (x32 * jax.lax.rsqrt(mean_square + self.epsilon) * scale).astype(self.dtype)


class AVLocModel(nn.Module):
    """The whole model: embeddings -> fusion -> classifier head.

    ``fusion`` selects the paper's method or one of its baselines in the same code path:
      cross_attention: S cross-attention stages, then [Xa^S ; Xv^S];
      concat: early concatenation [Xa^0 ; Xv^0];
      visual / audio: a single modality's embedding.
    ``head`` is ``openmax`` (the method) or ``softmax_bg`` (closed-set baseline).
    ``head_norm`` normalises the fused features in front of the head, the same way for
    every fusion: ``none`` (the identity), ``layernorm`` (per snippet, over the fused
    channels) or ``video_rms`` (`VideoRMSNorm`). It removes the scale difference between
    fusions (the dense skip sum doubles the embeddings), so that cross_attention, its
    gate-held-at-0 control and concat differ only by the attention.
    Parameters are always float32; ``dtype`` is the compute dtype.
    """

    # No defaults: the fields are the keys of `config.model`, whose defaults live only in
    # configs/default.py (`build_model` passes them through).
    num_classes: int
    embed_dim: int
    fusion: str
    head: str
    head_norm: str
    num_stages: int
    num_heads: int
    skip: str
    merge: str
    attention_window: int
    distance_bias: bool
    attention_gate: bool
    attention_gate_frozen: bool
    conv_kernel: int
    dropout_rate: float
    dtype: Dtype

    @nn.compact
    def __call__(
        self, visual: Array, audio: Array, mask: Array, *, train: bool = False
    ) -> dict[str, Array]:
        """visual: [B, T, Dv], audio: [B, T, Da], mask: [B, T] bool.

        Returns float32 arrays:
          class_logits [B, T, C]  the class activation sequence z,
          reliability_logits [B, T], reliability μ [B, T],
          posterior [B, T, C+1]   open-set posterior (background last),
        all zero at padded snippets.
        """
        if self.fusion not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.head not in HEADS:
            raise ValueError(f"model.head must be one of {HEADS}, got {self.head!r}")
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"model.head_norm must be one of {HEAD_NORMS}, got {self.head_norm!r}")
        mask = mask.astype(bool)

        def embed(name: str) -> ModalityEmbedding:
            return ModalityEmbedding(
                self.embed_dim, self.conv_kernel, self.dropout_rate, self.dtype, name=name
            )

        streams = []
        if self.fusion != "audio":
            visual_embedded = embed("visual_embedding")(
                visual.astype(self.dtype), mask, train=train
            )
        if self.fusion != "visual":
            audio_embedded = embed("audio_embedding")(audio.astype(self.dtype), mask, train=train)
        if self.fusion == "cross_attention":
            audio_embedded, visual_embedded = MultiStageCrossAttention(
                num_stages=self.num_stages,
                num_heads=self.num_heads,
                skip=self.skip,
                merge=self.merge,
                window=self.attention_window,
                distance_bias=self.distance_bias,
                attention_gate=self.attention_gate,
                attention_gate_frozen=self.attention_gate_frozen,
                dtype=self.dtype,
                name="fusion",
            )(audio_embedded, visual_embedded, mask)
        if self.fusion != "visual":
            streams.append(audio_embedded)
        if self.fusion != "audio":
            streams.append(visual_embedded)
        fused = jnp.concatenate(streams, axis=-1)
        if self.head_norm == "layernorm":
            fused = zero_padded(nn.LayerNorm(dtype=self.dtype, name="head_norm")(fused), mask)
        elif self.head_norm == "video_rms":
            fused = zero_padded(VideoRMSNorm(self.dtype, name="head_norm")(fused, mask), mask)
        # What the head sees (tests check the scales); costs nothing unless mutable.
        self.sow("intermediates", "head_input", fused)

        head_cls: Callable[..., nn.Module] = (
            OpenMaxHead if self.head == "openmax" else SoftmaxBackgroundHead
        )
        class_logits, reliability_logits = head_cls(
            self.num_classes, self.embed_dim, self.dropout_rate, self.dtype, name="head"
        )(fused, train=train)
        class_logits = zero_padded(class_logits.astype(jnp.float32), mask)
        reliability_logits = reliability_logits.astype(jnp.float32) * mask
        posterior = zero_padded(open_set_posterior(class_logits, reliability_logits), mask)
        return {
            "class_logits": class_logits,
            "reliability_logits": reliability_logits,
            "reliability": jax.nn.sigmoid(reliability_logits) * mask,
            "posterior": posterior,
        }


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_model(model_config: Any, num_classes: int) -> AVLocModel:
    """The model a `config.model` ConfigDict describes: its keys are AVLocModel's fields,
    passed as they are; only the dtype name becomes a dtype."""
    fields = dict(model_config.items())
    if fields["dtype"] not in DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {fields['dtype']!r}")
    return AVLocModel(num_classes=num_classes, **{**fields, "dtype": DTYPES[fields["dtype"]]})
