"""Types, the compute dtypes and the padding rule shared by the model's modules.

Shapes: B = batch, T = snippets, d = the embedding size, H = attention heads, C = action
classes. ``mask`` [B, T] is True at real snippets; padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

# Large negative instead of -inf so that a row with every key masked gives a uniform
# (finite) softmax rather than NaN; such rows are padded queries and are zeroed anyway.
MASK_VALUE = -1e9

# `model.dtype`: the compute dtype by name. Parameters are always float32.
DTYPES: dict[str, Dtype] = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_config: Any) -> Dtype:
    """The dtype `model_config.dtype` names (a `config.model` ConfigDict)."""
    name = model_config.dtype
    if name not in DTYPES:
        raise ValueError(f"model.dtype must be one of {', '.join(DTYPES)}; got {name!r}")
    return DTYPES[name]


def zero_padded(x: Array, mask: Array) -> Array:
    """Zeroes padded snippets. x: [B, T, ...], mask: [B, T]."""
    return x * mask.reshape(mask.shape + (1,) * (x.ndim - 2)).astype(x.dtype)
