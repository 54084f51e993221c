"""The inputs a model's parameters are initialised from, in one place.

Training (engine/state.py) initialises the parameters it trains, and serving initialises
the structure a checkpoint is restored into; both call `init_params`, so the two can
never build different parameter trees. No parameter shape depends on the batch size or
the number of snippets, so a small dummy batch serves every dataset.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

# (batch, snippets) of the dummy inputs.
INIT_SHAPE = (1, 8)


def init_inputs(visual_dim: int, audio_dim: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(visual [1, 8, Dv] zeros, audio [1, 8, Da] zeros, mask [1, 8] all valid)."""
    return (
        jnp.zeros(INIT_SHAPE + (visual_dim,)),
        jnp.zeros(INIT_SHAPE + (audio_dim,)),
        jnp.ones(INIT_SHAPE, bool),
    )


def init_params(model: Any, rng: jax.Array, visual_dim: int, audio_dim: int) -> Any:
    """The model's freshly initialised parameters (the "params" collection) for features
    of `visual_dim` and `audio_dim`."""
    return model.init(rng, *init_inputs(visual_dim, audio_dim))["params"]
