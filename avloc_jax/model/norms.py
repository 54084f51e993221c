"""Head normalisation: the fused features normalised in front of the head, the same way
for every fusion (docs/method.md, "Head normalisation"), and `HEAD_NORMS`, the registry
`model.head_norm` chooses from.

A head norm is a flax module ``(x [B, T, F], mask [B, T]) -> [B, T, F]``; its builder in
`HEAD_NORMS` takes `config.model` and returns it, or None for no normalisation (no
module, no parameters). `build_model` puts it at the parameter path ``head_norm``.

Shapes: B = batch, T = snippets, F = the fused feature size. ``mask`` is True at real
snippets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from avloc_jax.model.masking import Array, Dtype, compute_dtype, zero_padded

HeadNormBuilder = Callable[[Any], "nn.Module | None"]  # config.model -> the norm, or None


class SnippetLayerNorm(nn.LayerNorm):
    """LayerNorm per snippet over the fused channels (learned affine), with the head norm's
    call signature; its parameters are LayerNorm's (``scale``, ``bias``) at its own path."""

    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        """x: [B, T, F], mask: [B, T] (unused: each snippet is normalised alone)."""
        return super().__call__(x)


class VideoRMSNorm(nn.Module):
    """Divides each video's features by their root mean square over its valid snippets and
    all channels, then applies a learned per-channel scale (initialised to 1).

    Unlike a per-snippet LayerNorm it keeps the relative amplitude of the snippets of a
    video (an action-vs-context cue can be an amplitude), and removes only the overall
    scale of the stream, e.g. the 2^(S-1) of the dense skip sum.

    Attributes:
      dtype: the output dtype (the statistics are float32).
      epsilon: added to the mean square.
    """

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


# model.head_norm -> its builder; the keys are the choices of `model.head_norm`.
HEAD_NORMS: dict[str, HeadNormBuilder] = {
    "none": lambda config: None,
    "layernorm": lambda config: SnippetLayerNorm(dtype=compute_dtype(config)),
    "video_rms": lambda config: VideoRMSNorm(compute_dtype(config)),
}
