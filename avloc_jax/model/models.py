"""Flax (linen) modules of the cross-attentional audio-visual localization model.

Shapes use B = batch, T = snippets, Dv / Da = visual / audio feature sizes, d = the
embedding size, H = attention heads, C = action classes. Every module takes a padding
mask ``mask`` [B, T] (True = a real snippet); padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.

The equations are those of ``docs/method.md`` (paper, plus the design decisions that
fill its gaps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

FUSIONS = ("cross_attention", "concat", "visual", "audio")
HEADS = ("openmax", "softmax_bg")
SKIPS = ("dense", "residual", "none")
MERGES = ("tanh", "layernorm", "none")

# Large negative instead of -inf so that a row with every key masked gives a uniform
# (finite) softmax rather than NaN; such rows are padded queries and are zeroed anyway.
_MASK_VALUE = -1e9


def _zero_padded(x: Array, mask: Array) -> Array:
    """Zeroes padded snippets. x: [B, T, ...], mask: [B, T]."""
    return x * mask.reshape(mask.shape + (1,) * (x.ndim - 2)).astype(x.dtype)


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
    """

    features: int
    conv_kernel: int = 3
    dropout_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array, *, train: bool) -> Array:
        """x: [B, T, D_in] -> [B, T, d]."""
        x = nn.relu(nn.Dense(self.features, dtype=self.dtype, name="dense")(x))
        x = _zero_padded(x, mask)
        if self.conv_kernel > 1:
            x = nn.Conv(
                self.features, (self.conv_kernel,), padding="SAME", dtype=self.dtype, name="conv"
            )(x)
            x = _zero_padded(nn.relu(x), mask)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return x


class CrossAttentionStage(nn.Module):
    """One cross-attention stage: each modality re-weights its OWN snippets with
    weights computed from both modalities.

      Λ[h] = (Xa W)_h (Xv)_hᵀ / √(d/H)                            [B, H, T_a, T_v]
      X̃a[t] = Σ_τ softmax_τ(Λ[τ, t]) Xa[τ]   (visually-aware audio)
      X̃v[t] = Σ_τ softmax_τ(Λ[t, τ]) Xv[τ]   (audio-aware visual)

    The values are never projected and never mixed across modalities: the other
    modality only sets the weights, which is how each stream keeps its own
    characteristics. With H heads, head h attends with channel block h of both streams
    and aggregates that block of the values.

    Attributes:
      num_heads: H; d must be divisible by H.
      window: if > 0, snippet t attends only to |t - τ| ≤ window (local attention).
      distance_bias: if True, adds a learned per-head penalty -softplus(α_h)·|t - τ|.
    """

    num_heads: int = 1
    window: int = 0
    distance_bias: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, audio: Array, visual: Array, mask: Array) -> tuple[Array, Array, Array]:
        """audio, visual: [B, T, d]; mask: [B, T].

        Returns (audio_out [B, T, d], visual_out [B, T, d], logits Λ [B, H, T, T] in float32).
        """
        batch, length, features = audio.shape
        if features % self.num_heads:
            raise ValueError(f"embed dim {features} is not divisible by num_heads {self.num_heads}")
        head_dim = features // self.num_heads

        def split_heads(x: Array) -> Array:  # [B, T, d] -> [B, H, T, d/H]
            return x.reshape(batch, length, self.num_heads, head_dim).transpose(0, 2, 1, 3)

        projected_audio = nn.Dense(features, use_bias=False, dtype=self.dtype, name="bilinear")(
            audio
        )
        audio_heads, visual_heads = split_heads(audio), split_heads(visual)
        logits = jnp.einsum("bhtd,bhsd->bhts", split_heads(projected_audio), visual_heads)
        logits = logits.astype(jnp.float32) / jnp.sqrt(float(head_dim))  # Λ[τ_audio, t_visual]

        offsets = jnp.abs(jnp.arange(length)[:, None] - jnp.arange(length)[None, :])  # [T, T]
        if self.distance_bias:
            slope = nn.softplus(
                self.param("distance_slope", nn.initializers.constant(-1.0), (self.num_heads,))
            )
            logits = logits - slope[None, :, None, None] * offsets
        valid_pairs = mask[:, None, :, None] & mask[:, None, None, :]  # [B, 1, T, T]
        if self.window > 0:
            valid_pairs = valid_pairs & (offsets <= self.window)
        logits = jnp.where(valid_pairs, logits, _MASK_VALUE)

        # Visually-aware audio: for visual snippet t, a softmax over audio snippets τ (axis 2).
        audio_weights = jax.nn.softmax(logits, axis=2).astype(self.dtype)
        audio_out = jnp.einsum("bhst,bhsd->bhtd", audio_weights, audio_heads)
        # Audio-aware visual: for audio snippet t, a softmax over visual snippets τ (axis 3).
        visual_weights = jax.nn.softmax(logits, axis=3).astype(self.dtype)
        visual_out = jnp.einsum("bhts,bhsd->bhtd", visual_weights, visual_heads)

        def merge_heads(x: Array) -> Array:  # [B, H, T, d/H] -> [B, T, d]
            return x.transpose(0, 2, 1, 3).reshape(batch, length, features)

        return merge_heads(audio_out), merge_heads(visual_out), logits


class MultiStageCrossAttention(nn.Module):
    """S cross-attention stages with skip connections and a merge non-linearity.

      dense:    Xm^s = merge(X̃m^s + Σ_{i<s} Xm^i)
      residual: Xm^s = merge(X̃m^s + Xm^{s-1})
      none:     Xm^s = merge(X̃m^s)

    merge is tanh (as in the paper's description), a per-stage, per-modality LayerNorm
    (which does not saturate), or none (the identity). With ``attention_gate`` the attended
    term enters as g_m^s ⊙ X̃m^s, a learned per-channel gate initialised to 0, so that
    training starts from the early-concatenation model and opens the gate only as far as
    the attention helps (docs/method.md). Without a skip connection there is nothing to
    start from (a closed gate would zero the streams), so the gate applies only with a skip.
    ``attention_gate_frozen`` keeps the gate at 0 (no gradient): the control model with the
    same streams, scale and head but no attention at all.
    """

    num_stages: int = 2
    num_heads: int = 1
    skip: str = "dense"
    merge: str = "none"
    window: int = 0
    distance_bias: bool = False
    attention_gate: bool = True
    attention_gate_frozen: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, audio: Array, visual: Array, mask: Array) -> tuple[Array, Array]:
        """audio, visual: [B, T, d] -> (audio [B, T, d], visual [B, T, d])."""
        if self.skip not in SKIPS:
            raise ValueError(f"model.skip must be one of {SKIPS}, got {self.skip!r}")
        if self.merge not in MERGES:
            raise ValueError(f"model.merge must be one of {MERGES}, got {self.merge!r}")
        audio_history, visual_history = [audio], [visual]
        for stage in range(self.num_stages):
            attended_audio, attended_visual, logits = CrossAttentionStage(
                num_heads=self.num_heads,
                window=self.window,
                distance_bias=self.distance_bias,
                dtype=self.dtype,
                name=f"stage_{stage}",
            )(audio_history[-1], visual_history[-1], mask)
            # Kept for plots (`avloc plot`); costs nothing unless the collection is mutable.
            self.sow("intermediates", f"attention_logits_{stage}", logits)
            new_streams = []
            for modality, attended, history in (
                ("audio", attended_audio, audio_history),
                ("visual", attended_visual, visual_history),
            ):
                if self.attention_gate and self.skip != "none":
                    gate = self.param(
                        f"{modality}_gate_{stage}", nn.initializers.zeros, (attended.shape[-1],)
                    )
                    if self.attention_gate_frozen:
                        gate = jax.lax.stop_gradient(gate)
                    attended = attended * gate.astype(attended.dtype)
                if self.skip == "dense":
                    attended = attended + sum(history)
                elif self.skip == "residual":
                    attended = attended + history[-1]
                if self.merge == "tanh":
                    merged = jnp.tanh(attended)
                elif self.merge == "none":
                    merged = attended
                else:
                    merged = nn.LayerNorm(dtype=self.dtype, name=f"{modality}_norm_{stage}")(
                        attended
                    )
                new_streams.append(_zero_padded(merged, mask))
            audio_history.append(new_streams[0])
            visual_history.append(new_streams[1])
        return audio_history[-1], visual_history[-1]


class MLP(nn.Module):
    """Dense(hidden) -> ReLU -> Dropout -> Dense(out). [B, T, D] -> [B, T, out]."""

    hidden: int
    out: int
    dropout_rate: float = 0.0
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
    """

    num_classes: int
    hidden: int
    dropout_rate: float = 0.0
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
    """

    num_classes: int
    hidden: int
    dropout_rate: float = 0.0
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


class AVLocModel(nn.Module):
    """The whole model: embeddings -> fusion -> classifier head.

    ``fusion`` selects the paper's method or one of its baselines in the same code path:
      cross_attention: S cross-attention stages, then [Xa^S ; Xv^S];
      concat: early concatenation [Xa^0 ; Xv^0];
      visual / audio: a single modality's embedding.
    ``head`` is ``openmax`` (the method) or ``softmax_bg`` (closed-set baseline).
    Parameters are always float32; ``dtype`` is the compute dtype.
    """

    # No defaults: the fields are the keys of `config.model`, whose defaults live only in
    # configs/default.py (`build_model` passes them through).
    num_classes: int
    embed_dim: int
    fusion: str
    head: str
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
        mask = mask.astype(bool)
        embed = lambda name: ModalityEmbedding(  # noqa: E731
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

        head_cls: Callable[..., nn.Module] = (
            OpenMaxHead if self.head == "openmax" else SoftmaxBackgroundHead
        )
        class_logits, reliability_logits = head_cls(
            self.num_classes, self.embed_dim, self.dropout_rate, self.dtype, name="head"
        )(fused, train=train)
        class_logits = _zero_padded(class_logits.astype(jnp.float32), mask)
        reliability_logits = reliability_logits.astype(jnp.float32) * mask
        posterior = _zero_padded(open_set_posterior(class_logits, reliability_logits), mask)
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
