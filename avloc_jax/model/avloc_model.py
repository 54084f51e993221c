"""The whole model, composed (embeddings -> fusion -> head norm -> head), and
`build_model`, the one factory that composes it from `config.model`.

`AVLocModel` holds its parts as submodules (flax composition: a module passed as a field
is adopted under the field's name), so it has no string switches: `build_model` looks each
part up in its registry (`FUSIONS`, `HEAD_NORMS`, `HEADS`) and passes the built modules
in. The field names are the parameter paths (``visual_embedding``, ``audio_embedding``,
``fusion``, ``head_norm``, ``head``): the same as before the composition, so checkpoints
of that layout load and flax derives the same initial values from them
(tests/test_model_layout.py).

Shapes: B = batch, T = snippets, d = the embedding size, F = the fused feature size,
C = action classes, Dv / Da = visual / audio feature sizes. ``mask`` [B, T] is True at
real snippets; padded snippets never influence the outputs at valid positions, and the
outputs at padded positions are zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from avloc_jax.model.embedding import ModalityEmbedding
from avloc_jax.model.fusions import FUSIONS, modalities_of
from avloc_jax.model.heads import HEADS, open_set_posterior
from avloc_jax.model.masking import Array, compute_dtype, zero_padded
from avloc_jax.model.norms import HEAD_NORMS


class AVLocModel(nn.Module):
    """The whole model: embeddings -> fusion -> [head norm] -> classifier head.

    Attributes:
      fusion: a fusion module (avloc_jax/model/fusions.py): reads the embedded streams its
        ``modalities`` name, {m: [B, T, d]}, and returns the fused features [B, T, F].
      head: a head module (avloc_jax/model/heads.py): [B, T, F] -> (class logits
        [B, T, C], reliability logits [B, T]).
      visual_embedding, audio_embedding: [B, T, Dv] / [B, T, Da] -> [B, T, d]
        (`ModalityEmbedding`); None for a modality the fusion does not read.
      head_norm: normalises the fused features, ([B, T, F], mask) -> [B, T, F]
        (avloc_jax/model/norms.py); None for none.

    Parameters are float32; each part computes in its own dtype (`config.model.dtype`).
    """

    fusion: nn.Module
    head: nn.Module
    visual_embedding: nn.Module | None = None
    audio_embedding: nn.Module | None = None
    head_norm: nn.Module | None = None

    def __call__(
        self, visual: Array, audio: Array, mask: Array, *, train: bool = False
    ) -> dict[str, Array]:
        """visual: [B, T, Dv], audio: [B, T, Da], mask: [B, T] bool.

        Returns float32 arrays:
          class_logits [B, T, C]  the class activation sequence z,
          reliability_logits [B, T], reliability μ [B, T],
          posterior [B, T, C+1]   open-set posterior (background last),
        all zero at padded snippets. With ``mutable=["intermediates"]`` the features the
        head sees are sown as ``head_input`` [B, T, F].
        """
        mask = mask.astype(bool)
        streams: dict[str, Array] = {}
        for modality, features, embedding in (
            ("visual", visual, self.visual_embedding),
            ("audio", audio, self.audio_embedding),
        ):
            if embedding is not None:
                streams[modality] = embedding(features, mask, train=train)
        missing = [m for m in modalities_of(self.fusion) if m not in streams]
        if missing:
            raise ValueError(
                f"fusion {type(self.fusion).__name__} reads {', '.join(missing)}, "
                "which the model does not embed"
            )
        fused = self.fusion(streams, mask)
        if self.head_norm is not None:
            fused = zero_padded(self.head_norm(fused, mask), mask)
        # What the head sees (tests check the scales); costs nothing unless mutable.
        self.sow("intermediates", "head_input", fused)

        class_logits, reliability_logits = self.head(fused, train=train)
        class_logits = zero_padded(class_logits.astype(jnp.float32), mask)
        reliability_logits = reliability_logits.astype(jnp.float32) * mask
        posterior = zero_padded(open_set_posterior(class_logits, reliability_logits), mask)
        return {
            "class_logits": class_logits,
            "reliability_logits": reliability_logits,
            "reliability": jax.nn.sigmoid(reliability_logits) * mask,
            "posterior": posterior,
        }


Builder = TypeVar("Builder")


def _builder(registry: Mapping[str, Builder], key: str, name: Any) -> Builder:
    """registry[name], or one error naming the config key and the registered choices."""
    if name not in registry:
        raise ValueError(f"model.{key} must be one of {', '.join(registry)}; got {name!r}")
    return registry[name]


def build_model(model_config: Any, num_classes: int) -> AVLocModel:
    """The model a `config.model` ConfigDict describes, for `num_classes` classes.

    model.fusion, model.head and model.head_norm pick a builder from `FUSIONS`, `HEADS`
    and `HEAD_NORMS`; each builder reads the keys of `config.model` it needs. The model
    embeds exactly the modalities its fusion reads. An unknown name or dtype raises one
    ValueError naming the key and the choices.
    """
    dtype = compute_dtype(model_config)
    fusion = _builder(FUSIONS, "fusion", model_config.fusion)(model_config)
    head_norm = _builder(HEAD_NORMS, "head_norm", model_config.head_norm)(model_config)
    head = _builder(HEADS, "head", model_config.head)(model_config, num_classes)
    embeddings = {
        modality: ModalityEmbedding(
            model_config.embed_dim, model_config.conv_kernel, model_config.dropout_rate, dtype
        )
        for modality in modalities_of(fusion)
    }
    return AVLocModel(
        fusion=fusion,
        head=head,
        visual_embedding=embeddings.get("visual"),
        audio_embedding=embeddings.get("audio"),
        head_norm=head_norm,
    )
