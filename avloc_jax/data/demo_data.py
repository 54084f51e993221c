"""A built-in untrimmed audio-visual localization dataset, generated from a seed.

It needs no files, runs in seconds on a CPU, and is built so that solving it needs both
modalities. Timelines are random (1 to ``max_instances`` instances of one class per
video, a few background-only videos); the features carry the planted structure of
`avloc_jax.data.synthetic_features`: visually identical class pairs told apart only by
sound, silent classes, near-action visual context, unrelated background music, scene
offsets and temporally correlated noise. Visual and audio snippets are aligned here
(one second each); `avloc make-benchmark` exercises different rates. The generation
parameters are the config's `data.demo` (defaults: configs/default.py).
"""

from __future__ import annotations

import ml_collections
import numpy as np

from avloc_jax.data import synthetic_features
from avloc_jax.data.records import TASK_DETECTION, Dataset, DatasetMetadata, Record

SPLITS = ("train", "validation", "test")


def class_names(structure: synthetic_features.ClassStructure) -> tuple[str, ...]:
    return tuple(f"{kind}_{c}" for c, kind in enumerate(structure.kinds))


def _instances(
    rng: np.random.Generator, duration: int, config: ml_collections.ConfigDict
) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) whole-second ranges, separated by context-free gaps."""
    count = int(rng.integers(1, config.max_instances + 1))
    max_len = max(config.min_instance_seconds, duration // (count + 1))
    gap = int(np.ceil(config.context_seconds))
    ranges: list[tuple[int, int]] = []
    for _ in range(20 * count):
        if len(ranges) == count:
            break
        size = int(rng.integers(config.min_instance_seconds, max_len + 1))
        start = int(rng.integers(0, max(1, duration - size + 1)))
        end = min(duration, start + size)
        if all(end + gap <= s or start >= e + gap for s, e in ranges):
            ranges.append((start, end))
    return sorted(ranges)


def make_video(
    rng: np.random.Generator,
    video_id: str,
    config: ml_collections.ConfigDict,
    structure: synthetic_features.ClassStructure,
) -> Record:
    num_classes = len(structure.kinds)
    duration = int(rng.integers(config.min_seconds, config.max_seconds + 1))
    labels = np.zeros(num_classes, np.float32)
    segments: list[tuple[int, int]] = []
    label = -1
    if rng.random() >= config.background_only_fraction:
        label = int(rng.integers(num_classes))
        labels[label] = 1.0
        segments = _instances(rng, duration, config)
    visual, audio = synthetic_features.synthesize_video(
        rng, float(duration), segments, [label] * len(segments), structure, config
    )
    snippet_labels = np.full(len(visual), num_classes, np.int32)
    for start, end in segments:
        snippet_labels[start:end] = label
    return {
        "video_id": video_id,
        "visual": visual,
        "audio": audio,
        "labels": labels,
        "duration": np.float32(duration),
        "segments": np.asarray(segments, np.float32).reshape(-1, 2),
        "segment_labels": np.full(len(segments), label, np.int32),
        "snippet_labels": snippet_labels,
    }


def make_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """All splits of the demo dataset, a pure function of (config, seed)."""
    structure = synthetic_features.make_class_structure(config.num_classes, config, seed)
    splits = {}
    for split_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, split_index])
        splits[split] = [
            make_video(rng, f"demo_{split}_{i:05d}", config, structure)
            for i in range(config.num_videos[split])
        ]
    metadata = DatasetMetadata(
        name="demo",
        task=TASK_DETECTION,
        class_names=class_names(structure),
        visual_dim=config.visual_dim,
        audio_dim=config.audio_dim,
        train_split="train",
        val_split="validation",
        test_split="test",
        tiou_thresholds=tuple(np.round(np.arange(0.1, 0.75, 0.1), 2).tolist()),
    )
    return Dataset(metadata=metadata, splits=splits)
