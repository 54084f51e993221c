"""The model, one module per part of the method (docs/method.md):

embedding.py        ModalityEmbedding: per-modality Dense -> Conv1D snippet embedding
cross_attention.py  CrossAttentionStage, MultiStageCrossAttention: the fusion
heads.py            OpenMaxHead (action + foreground reliability), the closed-set baseline,
                    open_set_posterior
avloc_model.py      AVLocModel (embeddings -> fusion -> head) and build_model
masking.py          the padding rule every module follows
"""

from avloc_jax.model.avloc_model import (
    DTYPES,
    FUSIONS,
    HEAD_NORMS,
    AVLocModel,
    VideoRMSNorm,
    build_model,
)
from avloc_jax.model.cross_attention import (
    MERGES,
    SKIPS,
    CrossAttentionStage,
    MultiStageCrossAttention,
)
from avloc_jax.model.embedding import ModalityEmbedding
from avloc_jax.model.heads import (
    HEADS,
    MLP,
    OpenMaxHead,
    SoftmaxBackgroundHead,
    open_set_posterior,
)

__all__ = [
    "DTYPES",
    "FUSIONS",
    "HEADS",
    "HEAD_NORMS",
    "MERGES",
    "MLP",
    "SKIPS",
    "AVLocModel",
    "CrossAttentionStage",
    "ModalityEmbedding",
    "MultiStageCrossAttention",
    "OpenMaxHead",
    "SoftmaxBackgroundHead",
    "VideoRMSNorm",
    "build_model",
    "open_set_posterior",
]
