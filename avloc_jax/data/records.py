"""The data contract shared by the dataset builders, the demo data, the input
pipeline, the engine and the evaluation code.

A *record* is one video, as a dict of NumPy values:

  ``video_id``        str             the dataset's id (YouTube id for ActivityNet/AVE)
  ``visual``          float32 [T, Dv] visual snippet features
  ``audio``           float32 [T, Da] audio snippet features, aligned to the visual ones
  ``labels``          float32 [C]     multi-hot video-level labels (all zero: background-only)
  ``duration``        float32 []      the video's length in seconds
  ``segments``        float32 [K, 2]  ground-truth (start, end) seconds; K may be 0
  ``segment_labels``  int32   [K]     class index of each segment
  ``snippet_labels``  int32   [T]     per-snippet class, C meaning background (AVE-style
                                      datasets; untrimmed datasets derive it from segments)

Training only ever reads ``visual``, ``audio`` and ``labels``: the segment-level fields are
there for evaluation and validation-based model selection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avloc_jax.data import activitynet_json

Record = dict[str, Any]

TASK_AVE = "ave"  # trimmed clips, per-snippet labels, segment accuracy
TASK_DETECTION = "detection"  # untrimmed videos, detection mAP


@dataclasses.dataclass(frozen=True)
class DatasetMetadata:
    """What a config needs to know about a dataset; users never type these."""

    name: str
    task: str  # TASK_AVE or TASK_DETECTION
    class_names: tuple[str, ...]
    visual_dim: int
    audio_dim: int
    # Split names in the dataset and the role each plays for the engine.
    train_split: str = "train"
    val_split: str = "validation"
    test_split: str = "test"
    # tIoU thresholds of the dataset's official protocol (detection task only).
    tiou_thresholds: tuple[float, ...] = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def resolve_split(self, name: str) -> str:
        """A role ('train' / 'val' / 'test') -> this dataset's split name; any other name
        (a split of the dataset itself) passes through."""
        roles = {"train": self.train_split, "val": self.val_split, "test": self.test_split}
        return roles.get(name, name)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetMetadata:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["class_names"] = tuple(kwargs["class_names"])
        if "tiou_thresholds" in kwargs:
            kwargs["tiou_thresholds"] = tuple(float(x) for x in kwargs["tiou_thresholds"])
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Random-access splits (a list, or a TFDS/grain data source) plus metadata."""

    metadata: DatasetMetadata
    splits: Mapping[str, Sequence[Record]]

    def split(self, name: str) -> Sequence[Record]:
        if name not in self.splits:
            raise KeyError(
                f"dataset {self.metadata.name!r} has no split {name!r}; "
                f"available: {sorted(self.splits)}"
            )
        return self.splits[name]


def resample_time(features: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling along time: [T, D] -> float32 [length, D].

    Snippet centres are matched: output snippet t sits at time (t + 0.5) / length of the
    video, which is input position (t + 0.5) * T / length - 0.5 (clamped at the ends), so
    both sequences cover the same time span. Used to put audio snippets (e.g. VGGish,
    0.96 s) on the visual ones (e.g. I3D, 16 frames) when their rates differ.
    """
    features = np.asarray(features, np.float32)
    t_in = features.shape[0]
    if t_in == length:
        return features
    pos = np.clip((np.arange(length) + 0.5) * t_in / length - 0.5, 0.0, t_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t_in - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return features[lo] * (1.0 - w) + features[hi] * w


def ground_truth_json(records: Sequence[Record], class_names: Sequence[str], subset: str) -> dict:
    """Ground truth of `records` in the official ActivityNet JSON layout (`activitynet_json`)."""
    return activitynet_json.ground_truth_payload(
        activitynet_json.GroundTruthVideo(
            video_id=_as_str(record["video_id"]),
            subset=subset,
            duration=float(record["duration"]),
            segments=np.asarray(record["segments"]).reshape(-1, 2),
            labels=tuple(class_names[int(lab)] for lab in record["segment_labels"]),
        )
        for record in records
    )


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        value = value.item()
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return str(value)


as_str = _as_str
