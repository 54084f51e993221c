"""Multi-stage cross-attention: audio and visual streams re-weighted with attention
computed from both, each keeping its own values (docs/method.md, "Cross-attention stage").

Shapes: B = batch, T = snippets, d = the embedding size, H = attention heads, C = action
classes. ``mask`` [B, T] is True at real snippets; padded snippets never influence the
outputs at valid positions, and the outputs at padded positions are zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from avloc_jax.model.masking import MASK_VALUE, Array, Dtype, zero_padded

SKIPS = ("dense", "residual", "none")
MERGES = ("tanh", "layernorm", "none")


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

    # No defaults for what config.model sets (configs/default.py owns those values).
    num_heads: int
    window: int
    distance_bias: bool
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
        logits = jnp.where(valid_pairs, logits, MASK_VALUE)

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

    As a fusion (``model.fusion = "cross_attention"``, avloc_jax/model/fusions.py),
    ``__call__`` takes the embedded streams and returns [Xa^S ; Xv^S]; ``attend`` returns
    the two streams apart. Per-stage Λ is sown as ``intermediates/attention_logits_{s}``.

    Attributes:
      num_stages: S.
      num_heads, window, distance_bias: of every `CrossAttentionStage`.
      skip: one of SKIPS; merge: one of MERGES.
      attention_gate / attention_gate_frozen: the zero-initialised gate / held at 0.
      dtype: the compute dtype (parameters stay float32).
    """

    modalities: ClassVar[tuple[str, ...]] = ("audio", "visual")  # the streams it reads

    # No defaults for what config.model sets (configs/default.py owns those values).
    num_stages: int
    num_heads: int
    skip: str
    merge: str
    window: int
    distance_bias: bool
    attention_gate: bool
    attention_gate_frozen: bool
    dtype: Dtype = jnp.float32

    def __call__(self, streams: Mapping[str, Array], mask: Array) -> Array:
        """streams {"audio", "visual"}: [B, T, d] each -> [Xa^S ; Xv^S] [B, T, 2d]."""
        audio, visual = self.attend(streams["audio"], streams["visual"], mask)
        return jnp.concatenate([audio, visual], axis=-1)

    @nn.compact
    def attend(self, audio: Array, visual: Array, mask: Array) -> tuple[Array, Array]:
        """audio, visual: [B, T, d] -> (Xa^S [B, T, d], Xv^S [B, T, d])."""
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
                new_streams.append(zero_padded(merged, mask))
            audio_history.append(new_streams[0])
            visual_history.append(new_streams[1])
        return audio_history[-1], visual_history[-1]
