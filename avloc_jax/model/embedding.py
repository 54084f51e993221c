"""Per-modality snippet embedding (docs/method.md, "Embedding").

Shapes: B = batch, T = snippets, d = the embedding size, H = attention heads, C = action
classes. ``mask`` [B, T] is True at real snippets; padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from avloc_jax.model.masking import Array, Dtype, zero_padded


class ModalityEmbedding(nn.Module):
    """Per-modality embedding: Dense(d) -> ReLU [-> Conv1D(k) -> ReLU] -> Dropout.

    The optional temporal convolution gives every fusion variant the same small
    temporal context (see docs/method.md, "temporal embedding"). Inputs at padded
    positions are zeroed before the convolution, so a padded tail looks exactly like
    the convolution's own zero padding and cannot leak into valid snippets.

    Attributes:
      features: d, the embedding size.
      conv_kernel: temporal kernel size; 0 or 1 disables the convolution.
      dropout_rate: dropout after the embedding (training only).
      dtype: the compute dtype (parameters stay float32).
    """

    features: int
    conv_kernel: int  # config.model.conv_kernel; no default here (configs/default.py owns it)
    dropout_rate: float
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array, *, train: bool) -> Array:
        """x: [B, T, D_in] (any float dtype; computed in ``dtype``), mask: [B, T] -> [B, T, d]."""
        x = x.astype(self.dtype)
        x = nn.relu(nn.Dense(self.features, dtype=self.dtype, name="dense")(x))
        x = zero_padded(x, mask)
        if self.conv_kernel > 1:
            x = nn.Conv(
                self.features, (self.conv_kernel,), padding="SAME", dtype=self.dtype, name="conv"
            )(x)
            x = zero_padded(nn.relu(x), mask)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return x
