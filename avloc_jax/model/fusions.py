"""The fusions: how the embedded audio and visual streams become the features the head
sees, and `FUSIONS`, the registry `model.fusion` chooses from.

A fusion is a flax module with
  modalities: tuple[str, ...]   the embedded streams it reads ("audio", "visual"); the
                                model embeds exactly these (a class attribute or a field)
  __call__(streams, mask) -> fused
    streams: {modality: [B, T, d]} (its modalities), mask: [B, T] bool
    fused:   [B, T, F], zero at padded snippets
and a builder in `FUSIONS`: name -> a function of `config.model` (a ConfigDict) that
returns the module. `build_model` (avloc_model.py) puts the module at the parameter path
``fusion``. Adding a fusion is one module and one line here (or in the user's code):

    FUSIONS["gated_sum"] = lambda config: GatedSum(dtype=compute_dtype(config))

docs/architecture.md, "Adding a fusion", shows a whole example, and
tests/test_model_registry.py trains it.

Shapes: B = batch, T = snippets, d = the embedding size, F = the fused feature size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avloc_jax.model.cross_attention import MultiStageCrossAttention
from avloc_jax.model.masking import Array, compute_dtype

MODALITIES = ("audio", "visual")  # the streams AVLocModel embeds, in concatenation order

FusionBuilder = Callable[[Any], nn.Module]  # config.model -> the fusion module


class Concat(nn.Module):
    """No interaction: the chosen embedded streams side by side, [Xa^0 ; Xv^0] (the early
    concatenation baseline) or one stream alone (the single-modality baselines). No
    parameters.

    Attributes:
      modalities: the streams it reads, concatenated in this order.
    """

    modalities: tuple[str, ...]

    def __call__(self, streams: Mapping[str, Array], mask: Array) -> Array:
        """streams {m: [B, T, d]} -> [B, T, len(modalities) * d]."""
        return jnp.concatenate([streams[m] for m in self.modalities], axis=-1)


def cross_attention(config: Any) -> nn.Module:
    """The paper's fusion: S cross-attention stages, then [Xa^S ; Xv^S]."""
    return MultiStageCrossAttention(
        num_stages=config.num_stages,
        num_heads=config.num_heads,
        skip=config.skip,
        merge=config.merge,
        window=config.attention_window,
        distance_bias=config.distance_bias,
        attention_gate=config.attention_gate,
        attention_gate_frozen=config.attention_gate_frozen,
        dtype=compute_dtype(config),
    )


# model.fusion -> its builder. The keys are the choices of `model.fusion` (the config
# schema reads this dict when it checks a config, so a fusion added later is allowed).
FUSIONS: dict[str, FusionBuilder] = {
    "cross_attention": cross_attention,
    "concat": lambda config: Concat(("audio", "visual")),
    "visual": lambda config: Concat(("visual",)),
    "audio": lambda config: Concat(("audio",)),
}


def modalities_of(fusion: nn.Module) -> tuple[str, ...]:
    """The streams `fusion` reads, checked: a non-empty tuple of MODALITIES."""
    modalities = getattr(fusion, "modalities", None)
    name = type(fusion).__name__
    if not isinstance(modalities, tuple) or not modalities:
        raise ValueError(
            f"fusion {name} must say which streams it reads: "
            f"modalities = a tuple of {', '.join(MODALITIES)}"
        )
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(
            f"fusion {name} reads {', '.join(map(str, unknown))}; "
            f"the model embeds only {', '.join(MODALITIES)}"
        )
    return modalities
