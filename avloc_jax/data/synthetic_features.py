"""Feature synthesis with planted audio-visual structure, on a real timeline.

Used by `avloc make-benchmark`: the videos, durations, segments and classes are real
annotations; only the features are synthesised. The structure planted per class:

* ``pair``: classes in visually near-identical pairs (one visual prototype, plus a small
  ``pair_visual_offset``), told apart only by their sound;
* ``silent``: no sound of its own (only vision finds it);
* ``distinct``: distinct in both modalities.

Per video: a scene offset per modality, temporally correlated (AR(1)) noise, near-action
visual context (the scene looks like the action just before and after it, without its
sound), unrelated background "music" over random stretches, and a small random
audio/visual misalignment. Visual and audio snippets have their own rates (I3D-style
0.64 s and VGGish-style 0.96 s by default), so the audio has a different snippet count.
Features pass through a softplus: non-negative, like post-ReLU CNN features.

Optional benchmark conditions (`Conditions`, all off by default; docs/benchmark.md,
"Pre-registered conditions"): per-segment audio-visual offsets, sparse audio cues, and
stretches where one modality carries nothing (silent audio, occluded view). Each draws
from its own child generator, so turning one on leaves every other draw unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ml_collections
import numpy as np


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.visual_dim = 64
    c.audio_dim = 32
    c.visual_snippet_seconds = 0.64  # 16 frames at 25 fps (I3D)
    c.audio_snippet_seconds = 0.96  # VGGish frames
    c.pair_fraction = 0.3  # share of classes in visually near-identical pairs
    c.silent_fraction = 0.2  # share of classes with no sound of their own
    c.pair_visual_offset = 0.15  # how different the two visuals of a pair are (relative)
    c.visual_strength = 1.5
    c.audio_strength = 1.5
    c.context_strength = 0.8
    c.context_seconds = 3.0
    c.music_probability = 0.5
    c.music_strength = 1.5
    c.max_misalignment_seconds = 0.5
    c.scene_std = 0.6
    c.noise_std = 1.0
    c.temporal_correlation = 0.8
    # Benchmark conditions (`Conditions`; docs/benchmark.md). The values below are "off".
    c.segment_misalignment_seconds = 0.0  # each action's sound shifted by U(-x, x) s
    c.audio_cue_fraction = 1.0  # an action's sound lasts this fraction of the visible action
    c.silent_stretch_prob = 0.0  # per video: one stretch where the audio carries nothing
    c.occluded_stretch_prob = 0.0  # per video: one stretch where the visual carries nothing
    c.stretch_fraction = 0.3  # length of such a stretch, as a fraction of the duration
    return c


@dataclasses.dataclass(frozen=True)
class Conditions:
    """The benchmark conditions of one synthesis (the keys of the same names in
    `default_config`; docs/benchmark.md, "Pre-registered conditions").

    segment_misalignment_seconds: each action instance's sound is shifted against its
      picture by its own δ ~ U(-x, x) seconds (on top of the per-video shift).
    audio_cue_fraction: an action's sound covers only this fraction of the instance, at a
      uniformly random place inside it (at least one audio snippet); 1 = all of it.
    silent_stretch_prob / occluded_stretch_prob: per video, with this probability, one
      stretch of ``stretch_fraction`` of the duration where the audio / the visual carries
      nothing (no class signal, no context, no music: noise and scene offset only).
    """

    segment_misalignment_seconds: float
    audio_cue_fraction: float
    silent_stretch_prob: float
    occluded_stretch_prob: float
    stretch_fraction: float

    def __post_init__(self) -> None:
        checks = {
            "segment_misalignment_seconds": self.segment_misalignment_seconds >= 0,
            "audio_cue_fraction": 0 < self.audio_cue_fraction <= 1,
            "silent_stretch_prob": 0 <= self.silent_stretch_prob <= 1,
            "occluded_stretch_prob": 0 <= self.occluded_stretch_prob <= 1,
            "stretch_fraction": 0 < self.stretch_fraction <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} out of range: {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Conditions:
        return cls(**{f.name: float(config[f.name]) for f in dataclasses.fields(cls)})

    @property
    def active(self) -> bool:
        return (
            self.segment_misalignment_seconds > 0
            or self.audio_cue_fraction < 1
            or self.silent_stretch_prob > 0
            or self.occluded_stretch_prob > 0
        )


@dataclasses.dataclass(frozen=True)
class ClassStructure:
    """Per-class roles and prototypes. kinds[c] in {'pair', 'silent', 'distinct'}."""

    kinds: tuple[str, ...]
    partner: tuple[int, ...]  # the other class of a pair, else -1
    visual: np.ndarray  # [C, Dv] unit-norm prototypes
    audio: np.ndarray  # [C, Da] unit-norm (zero for silent classes)
    music: np.ndarray  # [Da]


def make_class_structure(
    num_classes: int, config: ml_collections.ConfigDict, seed: int
) -> ClassStructure:
    rng = np.random.default_rng([seed, 2021])
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    order = rng.permutation(num_classes)
    num_pair_classes = 2 * int(round(config.pair_fraction * num_classes / 2))
    num_silent = int(round(config.silent_fraction * num_classes))
    kinds = ["distinct"] * num_classes
    partner = [-1] * num_classes
    visual = unit(rng.normal(size=(num_classes, config.visual_dim)))
    for i in range(0, num_pair_classes, 2):
        a, b = int(order[i]), int(order[i + 1])
        kinds[a] = kinds[b] = "pair"
        partner[a], partner[b] = b, a
        visual[b] = unit(
            visual[a] + config.pair_visual_offset * unit(rng.normal(size=config.visual_dim))
        )
    for c in order[num_pair_classes : num_pair_classes + num_silent]:
        kinds[int(c)] = "silent"
    audio = unit(rng.normal(size=(num_classes, config.audio_dim)))
    audio[[k == "silent" for k in kinds]] = 0.0
    music = unit(rng.normal(size=config.audio_dim))
    return ClassStructure(tuple(kinds), tuple(partner), visual, audio, music)


def snippet_count(duration: float, seconds_per_snippet: float) -> int:
    return max(1, int(np.ceil(duration / seconds_per_snippet)))


def _ar1(rng: np.random.Generator, length: int, dim: int, rho: float, std: float) -> np.ndarray:
    noise = np.empty((length, dim))
    noise[0] = rng.normal(size=dim) * std
    innovations = rng.normal(size=(length, dim)) * std * np.sqrt(1 - rho**2)
    for t in range(1, length):
        noise[t] = rho * noise[t - 1] + innovations[t]
    return noise


def _cover(centres: np.ndarray, start: float, end: float) -> np.ndarray:
    return (centres >= start) & (centres < end)


def _stretch(
    rng: np.random.Generator, probability: float, fraction: float, duration: float,
    centres: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """[T] True inside one stretch of fraction x duration, with `probability`; else none."""
    if probability <= 0 or rng.random() >= probability:
        return np.zeros(len(centres), bool)
    length = fraction * duration
    start = rng.uniform(0.0, duration - length)
    return _cover(centres, start, start + length)


def _audio_cover(
    conditions: Conditions,
    offset_rng: np.random.Generator,
    cue_rng: np.random.Generator,
    audio_t: np.ndarray,
    start: float,
    end: float,
) -> np.ndarray:
    """[Ta] the audio snippets that carry one action instance's sound under `conditions`."""
    if conditions.segment_misalignment_seconds > 0:
        delta = offset_rng.uniform(
            -conditions.segment_misalignment_seconds, conditions.segment_misalignment_seconds
        )
        start, end = start + delta, end + delta
    if conditions.audio_cue_fraction >= 1:
        return _cover(audio_t, start, end)
    whole = _cover(audio_t, start, end)
    length = conditions.audio_cue_fraction * (end - start)
    cue_start = start + cue_rng.uniform(0.0, (end - start) - length)
    cue = _cover(audio_t, cue_start, cue_start + length)
    if whole.any() and not cue.any():  # shorter than a snippet: the nearest one inside
        inside = np.flatnonzero(whole)
        nearest = inside[np.argmin(np.abs(audio_t[inside] - (cue_start + length / 2)))]
        cue[nearest] = True
    return cue


def synthesize_video(
    rng: np.random.Generator,
    duration: float,
    segments: Sequence[tuple[float, float]],
    segment_labels: Sequence[int],
    structure: ClassStructure,
    config: ml_collections.ConfigDict,
    conditions: Conditions | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features for one video: (visual [Tv, Dv], audio [Ta, Da]) float32, with
    Tv = ⌈duration / visual_snippet_seconds⌉ and Ta likewise for audio.

    `conditions` (None = none) change only the planted signal; with none active the
    draws and the features are exactly those without them."""
    num_visual = snippet_count(duration, config.visual_snippet_seconds)
    num_audio = snippet_count(duration, config.audio_snippet_seconds)
    visual_t = (np.arange(num_visual) + 0.5) * config.visual_snippet_seconds
    shift = rng.uniform(-config.max_misalignment_seconds, config.max_misalignment_seconds)
    audio_t = (np.arange(num_audio) + 0.5) * config.audio_snippet_seconds + shift

    dv, da = config.visual_dim, config.audio_dim
    visual = _ar1(rng, num_visual, dv, config.temporal_correlation, config.noise_std)
    visual += rng.normal(size=dv) * config.scene_std
    audio = _ar1(rng, num_audio, da, config.temporal_correlation, config.noise_std)
    audio += rng.normal(size=da) * config.scene_std
    # Prototypes are unit-norm; times √D a prototype has per-dimension size ~1, like the noise.
    amp_v, amp_a = np.sqrt(dv), np.sqrt(da)

    # Where each modality may carry signal (everywhere unless a condition empties a stretch).
    visual_on, audio_on = np.ones(num_visual, bool), np.ones(num_audio, bool)
    active = conditions is not None and conditions.active
    if active:
        assert conditions is not None
        # Own child generators: the stream of `rng` (noise, scene, music) is not advanced.
        offset_rng, cue_rng, silent_rng, occluded_rng = rng.spawn(4)
        audio_on &= ~_stretch(
            silent_rng, conditions.silent_stretch_prob, conditions.stretch_fraction, duration,
            audio_t,
        )  # fmt: skip
        visual_on &= ~_stretch(
            occluded_rng, conditions.occluded_stretch_prob, conditions.stretch_fraction,
            duration, visual_t,
        )  # fmt: skip

    if rng.random() < config.music_probability:
        start, end = np.sort(rng.uniform(0, duration, size=2))
        audio[_cover(audio_t, start, end) & audio_on] += (
            config.music_strength * amp_a * structure.music
        )

    for (start, end), label in zip(segments, segment_labels):
        ctx = config.context_seconds
        context = (
            _cover(visual_t, start - ctx, start) | _cover(visual_t, end, end + ctx)
        ) & ~_cover(visual_t, start, end)
        visual[context & visual_on] += config.context_strength * amp_v * structure.visual[label]
        visual[_cover(visual_t, start, end) & visual_on] += (
            config.visual_strength * amp_v * structure.visual[label]
        )
        if active:
            assert conditions is not None
            sound = _audio_cover(conditions, offset_rng, cue_rng, audio_t, start, end)
        else:
            sound = _cover(audio_t, start, end)
        audio[sound & audio_on] += config.audio_strength * amp_a * structure.audio[label]

    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    return softplus(visual).astype(np.float32), softplus(audio).astype(np.float32)
