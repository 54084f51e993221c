"""The model, one module per part of the method (docs/method.md):

embedding.py        ModalityEmbedding: per-modality Dense -> Conv1D snippet embedding
cross_attention.py  CrossAttentionStage, MultiStageCrossAttention: the paper's fusion
fusions.py          the fusion contract, Concat (the baselines), FUSIONS (model.fusion)
norms.py            the head normalisations, HEAD_NORMS (model.head_norm)
heads.py            OpenMaxHead (action + foreground reliability), the closed-set baseline,
                    open_set_posterior, HEADS (model.head)
avloc_model.py      AVLocModel (embeddings -> fusion -> head norm -> head, as submodules)
                    and build_model, the one factory that composes it from config.model
masking.py          the padding rule every module follows, the compute dtypes (DTYPES)

FUSIONS, HEADS and HEAD_NORMS are registries (name -> builder); their keys are the choices
of model.fusion, model.head and model.head_norm. Adding a fusion: docs/architecture.md.
"""

from avloc_jax.model.avloc_model import AVLocModel, build_model
from avloc_jax.model.cross_attention import (
    MERGES,
    SKIPS,
    CrossAttentionStage,
    MultiStageCrossAttention,
)
from avloc_jax.model.embedding import ModalityEmbedding
from avloc_jax.model.fusions import FUSIONS, MODALITIES, Concat, modalities_of
from avloc_jax.model.heads import (
    HEADS,
    MLP,
    OpenMaxHead,
    SoftmaxBackgroundHead,
    open_set_posterior,
)
from avloc_jax.model.masking import DTYPES, compute_dtype, zero_padded
from avloc_jax.model.norms import HEAD_NORMS, SnippetLayerNorm, VideoRMSNorm

__all__ = [
    "DTYPES",
    "FUSIONS",
    "HEADS",
    "HEAD_NORMS",
    "MERGES",
    "MLP",
    "MODALITIES",
    "SKIPS",
    "AVLocModel",
    "Concat",
    "CrossAttentionStage",
    "ModalityEmbedding",
    "MultiStageCrossAttention",
    "OpenMaxHead",
    "SnippetLayerNorm",
    "SoftmaxBackgroundHead",
    "VideoRMSNorm",
    "build_model",
    "compute_dtype",
    "modalities_of",
    "open_set_posterior",
    "zero_padded",
]
