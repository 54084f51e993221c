"""A built-in untrimmed audio-visual localization dataset, generated from a seed.

It needs no files, runs in seconds on a CPU, and is built so that solving it needs both
modalities:

* **visually identical pairs**: classes 2i and 2i+1 (i < num_visual_pairs) share one
  visual prototype and differ only in their audio;
* **silent classes**: their actions make no sound, so only vision finds them;
* **near-action visual context**: just before and after an action the scene already looks
  like it (weaker), but the sound of the action is absent, which sharpens boundaries for
  a model that listens;
* **unrelated background audio**: "music" over random stretches of many videos;
* per-video scene offsets and temporally correlated noise, as real clip features have;
* non-negative features (a softplus), like post-ReLU CNN features.

Each video is one class (1 to ``max_instances`` instances); a small fraction is
background-only. Times are one second per snippet. The records follow
``avloc_jax.data_types``.
"""
from __future__ import annotations

import ml_collections
import numpy as np

from avloc_jax.data_types import TASK_DETECTION, Dataset, DatasetMetadata, Record

SPLITS = ("train", "validation", "test")


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_videos = {"train": 480, "validation": 120, "test": 160}
    c.min_snippets = 40
    c.max_snippets = 96
    c.visual_dim = 48
    c.audio_dim = 24
    c.num_visual_pairs = 2  # 2 * pairs classes that only audio tells apart
    c.num_silent = 2  # classes with no sound
    c.num_distinct = 2  # classes distinct in both modalities
    c.max_instances = 3
    c.min_instance_snippets = 4
    c.background_only_fraction = 0.05
    c.visual_strength = 1.6
    c.audio_strength = 1.6
    c.context_strength = 1.0  # visual look-alike right next to actions
    c.context_snippets = 4
    c.music_probability = 0.5
    c.music_strength = 1.6
    c.scene_std = 0.6
    c.noise_std = 1.0
    c.temporal_correlation = 0.7  # AR(1) coefficient of the feature noise
    c.snippet_seconds = 1.0
    return c


def class_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    names = []
    for i in range(config.num_visual_pairs):
        names += [f"pair{i}_a", f"pair{i}_b"]
    names += [f"silent{i}" for i in range(config.num_silent)]
    names += [f"distinct{i}" for i in range(config.num_distinct)]
    return tuple(names)


def _ar1_noise(rng: np.random.Generator, length: int, dim: int, rho: float, std: float) -> np.ndarray:
    """Temporally correlated Gaussian noise with stationary std `std`. [length, dim]."""
    innovations = rng.normal(size=(length, dim)) * std * np.sqrt(1 - rho**2)
    noise = np.empty((length, dim))
    noise[0] = rng.normal(size=dim) * std
    for t in range(1, length):
        noise[t] = rho * noise[t - 1] + innovations[t]
    return noise


def _prototypes(config: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 12345])
    num_classes = len(class_names(config))
    unit = lambda n, d: (lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True))(rng.normal(size=(n, d)))  # noqa: E731
    visual = unit(num_classes, config.visual_dim) * np.sqrt(config.visual_dim)
    for i in range(config.num_visual_pairs):
        visual[2 * i + 1] = visual[2 * i]
    audio = unit(num_classes, config.audio_dim) * np.sqrt(config.audio_dim)
    silent = slice(2 * config.num_visual_pairs, 2 * config.num_visual_pairs + config.num_silent)
    audio[silent] = 0.0
    music = unit(1, config.audio_dim)[0] * np.sqrt(config.audio_dim)
    return {"visual": visual, "audio": audio, "music": music}


def _instances(rng: np.random.Generator, length: int, config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) snippet ranges, separated by background."""
    count = int(rng.integers(1, config.max_instances + 1))
    max_len = max(config.min_instance_snippets, length // (count + 1))
    ranges: list[tuple[int, int]] = []
    for _ in range(20 * count):
        if len(ranges) == count:
            break
        size = int(rng.integers(config.min_instance_snippets, max_len + 1))
        start = int(rng.integers(0, max(1, length - size + 1)))
        end = min(length, start + size)
        gap = config.context_snippets
        if all(end + gap <= s or start >= e + gap for s, e in ranges):
            ranges.append((start, end))
    return sorted(ranges)


def make_video(
    rng: np.random.Generator, video_id: str, config: ml_collections.ConfigDict, prototypes: dict[str, np.ndarray]
) -> Record:
    num_classes = prototypes["visual"].shape[0]
    length = int(rng.integers(config.min_snippets, config.max_snippets + 1))
    noise = lambda dim: _ar1_noise(rng, length, dim, config.temporal_correlation, config.noise_std)  # noqa: E731
    visual = noise(config.visual_dim) + rng.normal(size=config.visual_dim) * config.scene_std
    audio = noise(config.audio_dim) + rng.normal(size=config.audio_dim) * config.scene_std

    if rng.random() < config.music_probability:
        start, end = np.sort(rng.integers(0, length + 1, size=2))
        audio[start:end] += config.music_strength * prototypes["music"] / np.sqrt(config.audio_dim) * 2

    snippet_labels = np.full(length, num_classes, np.int32)
    labels = np.zeros(num_classes, np.float32)
    segments: list[tuple[float, float]] = []
    if rng.random() >= config.background_only_fraction:
        label = int(rng.integers(num_classes))
        labels[label] = 1.0
        ctx = config.context_snippets
        for start, end in _instances(rng, length, config):
            for lo, hi in ((max(0, start - ctx), start), (end, min(length, end + ctx))):
                visual[lo:hi] += config.context_strength * prototypes["visual"][label] / np.sqrt(config.visual_dim) * 2
            visual[start:end] += config.visual_strength * prototypes["visual"][label] / np.sqrt(config.visual_dim) * 2
            audio[start:end] += config.audio_strength * prototypes["audio"][label] / np.sqrt(config.audio_dim) * 2
            snippet_labels[start:end] = label
            segments.append((start * config.snippet_seconds, end * config.snippet_seconds))

    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    return {
        "video_id": video_id,
        "visual": softplus(visual).astype(np.float32),
        "audio": softplus(audio).astype(np.float32),
        "labels": labels,
        "duration": np.float32(length * config.snippet_seconds),
        "segments": np.asarray(segments, np.float32).reshape(-1, 2),
        "segment_labels": np.full(len(segments), int(np.argmax(labels)), np.int32),
        "snippet_labels": snippet_labels,
    }


def make_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """All splits of the demo dataset, a pure function of (config, seed)."""
    prototypes = _prototypes(config, seed)
    splits = {}
    for split_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, split_index])
        splits[split] = [
            make_video(rng, f"demo_{split}_{i:05d}", config, prototypes) for i in range(config.num_videos[split])
        ]
    metadata = DatasetMetadata(
        name="demo",
        task=TASK_DETECTION,
        class_names=class_names(config),
        visual_dim=config.visual_dim,
        audio_dim=config.audio_dim,
        train_split="train",
        val_split="validation",
        test_split="test",
        tiou_thresholds=tuple(np.round(np.arange(0.1, 0.75, 0.1), 2).tolist()),
    )
    return Dataset(metadata=metadata, splits=splits)
